"""``--set key=value``: override any spec value by dotted path before validation.

``train.optimizer.lr=0.1`` sets one value; ``layers.3.out_features=10`` indexes a list; the value is
read as a YAML scalar (``yaml.safe_load``: ``1`` is an int, ``0.001`` a float,
``[1, 8, 24, 24]`` a list; unlike YAML 1.1, ``1e-3`` is a float too). A path through a bare
name (``loss: CrossEntropyLoss``) turns it into a
mapping (``{type: CrossEntropyLoss}``) so ``train.loss.label_smoothing=0.1`` works.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from torchspec.errors import Problem, SpecError
from torchspec.source import EXPONENT_FLOAT, Path

__all__ = ["Override", "apply_overrides", "parse_override"]

_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
_TAGGED_BY_SOURCE = ("data", "val")  # bare names under these keys are data sources


@dataclass(frozen=True)
class Override:
    arg: str  # as the user wrote it, for messages: "train.epochs=1"
    path: Path
    value: Any


def _error(arg: str, message: str, *hints: str) -> SpecError:
    return SpecError([Problem(f"--set {arg}", 0, 0, message, tuple(hints))])


def parse_override(arg: str) -> Override:
    key, sep, text = arg.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise _error(arg, "expected KEY=VALUE with a dotted KEY", "e.g. --set train.optimizer.lr=0.01")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _error(arg, f"the value is not valid YAML: {reason}", "quote strings with ':' or '#'") from None
    if isinstance(value, str) and EXPONENT_FLOAT.match(text.strip()):
        value = float(text)  # YAML 1.1 reads 1e-3 as a string; on a command line it means a number
    if isinstance(value, (dict, list)) and len(str(value)) > 10_000:
        raise _error(arg, "the value is too large")
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    return Override(arg, path, value)


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[str], defaults: Mapping[Path, str] | None = None
) -> dict[Path, str]:
    """Apply each ``--set`` to ``data`` in place; returns {changed or created path: argument}.

    ``defaults`` names the tag a missing mapping gets when a path goes through it
    (``train.optimizer.lr`` without an optimizer in the spec starts from the default optimizer).
    """
    owned: dict[Path, str] = {}
    for arg in overrides:
        item = parse_override(arg)
        node: Any = data
        for depth, step in enumerate(item.path[:-1]):
            here, nxt = item.path[: depth + 1], item.path[depth + 1]
            child = _get(node, step, item, here)
            if child is None and defaults and here in defaults:
                child = defaults[here]
            if child is None or isinstance(child, str):
                tag = "source" if step in _TAGGED_BY_SOURCE else "type"
                child = {} if child is None else {tag: child}
                _set(node, step, child, item)
                owned.setdefault(here, item.arg)
            if not isinstance(child, (dict, list)) or (isinstance(child, list) and isinstance(nxt, str)):
                shown = ".".join(map(str, here))
                raise _error(item.arg, f"{shown} is {_kind(child)}; it has no '{nxt}'")
            node = child
        _set(node, item.path[-1], item.value, item)
        owned[item.path] = item.arg
    return owned


def _kind(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"the value {value!r}"


def _get(node: Any, step: str | int, item: Override, here: Path) -> Any:
    if isinstance(node, list):
        if not isinstance(step, int) or step >= len(node):
            shown = ".".join(map(str, here[:-1])) or "spec"
            raise _error(item.arg, f"{shown} is a list of {len(node)} items; no index {step}")
        return node[step]
    return node.get(str(step))


def _set(node: Any, step: str | int, value: Any, item: Override) -> None:
    if isinstance(node, list):
        if not isinstance(step, int) or step >= len(node):
            raise _error(item.arg, f"index {step} is out of range (the list has {len(node)} items)")
        node[step] = value
    else:
        node[str(step)] = value
