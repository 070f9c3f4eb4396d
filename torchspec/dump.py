"""Plain spec data as YAML that torchspec reads back to the same data (``torchspec expand``).

Leaf layers are one flow mapping per line (``- {name: conv1, type: Conv2d, ...}``), containers
are block mappings with their ``layers`` nested below. Strings that would read back as something
else are quoted (PyYAML's YAML 1.1 rules, plus ``1e-3``-like strings, which torchspec reads as
numbers), and every ``$`` is written ``$$`` so no expression is read where none was meant.
"""

from __future__ import annotations

from typing import Any

import yaml

from torchspec import scalars

__all__ = ["dump_spec"]


class _Dumper(yaml.SafeDumper):
    def represent_str(self, data: str) -> yaml.ScalarNode:  # type: ignore[override]
        data = data.replace("$", "$$")
        if scalars.resolve(data) != scalars.STR:  # would read back as a number, bool or null
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


_Dumper.add_representer(str, _Dumper.represent_str)


def _flow(value: Any) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=1_000_000, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _layers(layers: list[Any], indent: str) -> list[str]:
    lines: list[str] = []
    for layer in layers:
        if isinstance(layer, dict) and isinstance(layer.get("layers"), list):
            first = True
            for key, value in layer.items():
                lead = f"{indent}- " if first else f"{indent}  "
                first = False
                if key == "layers":
                    lines.append(f"{lead}layers:")
                    lines += _layers(value, indent + "    ")
                else:
                    lines.append(f"{lead}{_flow(key)}: {_flow(value)}")
        else:
            lines.append(f"{indent}- {_flow(layer)}")
    return lines


def dump_spec(data: dict[str, Any], header: str | None = None) -> str:
    """``data`` (a spec as plain data) as YAML text; ``header`` becomes a leading comment."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    for key, value in data.items():
        if key == "layers" and isinstance(value, list):
            lines.append("layers:")
            lines += _layers(value, "  ")
        elif isinstance(value, dict) and value:  # e.g. train: its sections one per line
            lines.append(f"{_flow(key)}:")
            block = yaml.dump(value, Dumper=_Dumper, default_flow_style=None, sort_keys=False, width=100)
            lines += ["  " + line for line in block.rstrip("\n").splitlines()]
        else:
            lines.append(f"{_flow(key)}: {_flow(value)}")
    return "\n".join(lines) + "\n"
