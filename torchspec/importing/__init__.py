"""``torchspec import``: an existing ``nn.Module`` -> a spec that reproduces it.

The model is traced with torch.fx (:mod:`.trace`), keeping torchspec's layers as leaves; each
leaf's constructor arguments are read back from the module (:mod:`.leaves`), the functional glue
becomes merge and tensor layers (:mod:`.glue`), and the items are nested by module path into
containers wired with ``from:`` (:mod:`.items`, :mod:`.assemble`), so the state_dict keys are the
model's. The result is checked, built on the meta device and compared with the model
(:mod:`.verify`) before it is returned; what a spec cannot say is an :class:`ImportFailure` naming
the module and the source line, never a partial spec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from torchspec.importing.errors import ImportFailure
from torchspec.importing.load import load_factory, parse_target

__all__ = ["ImportFailure", "import_model", "load_factory", "parse_target", "spec_text", "write_spec"]


def import_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    description: str | None = None,
    ids: int | None = None,
) -> dict[str, Any]:
    """The spec (plain data) reproducing ``model`` on inputs of ``input_shape`` (one sample);
    ``ids``: the input is int64 token ids ``0 .. ids - 1`` (``input: {dtype: int64, high: ids}``)."""
    from torchspec.importing.assemble import assemble
    from torchspec.importing.items import read_items
    from torchspec.importing.leaves import layer_type
    from torchspec.importing.trace import check_train_mode, trace
    from torchspec.importing.verify import verify

    sample = tuple(int(s) for s in input_shape)
    if not sample or any(s < 1 for s in sample):
        raise ImportFailure(f"the input shape must be positive sizes, found {list(sample)}")
    whole = layer_type(model)
    if whole is not None:
        raise ImportFailure(
            f"the model is a single {whole} layer: its weights have keys without a container "
            f"({', '.join(list(model.state_dict())[:2]) or 'none'}), and a spec's layers sit in one",
            hints=["import a model holding it (nn.Sequential(layer): keys 0.weight, ...)"],
        )
    traced = trace(model, sample, ids)
    graph = read_items(traced)
    check_train_mode(traced)
    layers = assemble(graph)
    data: dict[str, Any] = {"name": name or type(model).__name__}
    if description:
        data["description"] = description
    data["input"] = list(sample) if ids is None else {"shape": list(sample), "dtype": "int64", "high": ids}
    data["layers"] = _plain(layers)
    out_node = next(n for n in traced.gm.graph.nodes if n.op == "output").args[0]
    verify(data, model, tuple(traced.values[out_node][0][1]))
    return data


def _plain(value: Any) -> Any:
    """Plain Python data (torch.fx hands back its own immutable lists, torch its Size)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def spec_text(data: dict[str, Any], header: str | None = None) -> str:
    from torchspec.dump import dump_spec

    return dump_spec(data, header=header)


def write_spec(data: dict[str, Any], path: str | os.PathLike[str], header: str | None = None) -> None:
    """Write the spec as YAML (or JSON for a .json path), atomically."""
    import json

    from torchspec.fileio import write_text

    if os.fspath(path).lower().endswith(".json"):
        write_text(path, json.dumps(data, indent=2) + "\n")
    else:
        write_text(path, spec_text(data, header))
