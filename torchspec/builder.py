"""Compiling a spec into torch; saving and loading weights with the spec inside.

This is the only place, with training, that imports torch. Each leaf becomes
``layer.torch_module(args)`` (``torch.nn.<type>(**args)``, or torchspec's own module for merges)
with the arguments the shape inference resolved, so the module is exactly what the table printed.
A container becomes ``nn.Sequential``; one whose layers read each other (``from:``) or pass tuples
on becomes a ``torch.fx.GraphModule`` built from a ``torch.fx.Graph``: one ``call_module`` per
child (by its name), ``operator.getitem`` for tuple elements. Children keep their names either
way, so state_dict keys are the dotted names whatever the wiring.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from torchspec.errors import SpecError
from torchspec.fileio import atomic_path
from torchspec.graph import Scope
from torchspec.infer import LayerRow, ShapeReport, infer_shapes
from torchspec.source import Document
from torchspec.spec import Spec, load_spec

if TYPE_CHECKING:
    import torch

__all__ = [
    "build",
    "build_from_report",
    "load_model",
    "provenance",
    "read_safetensors",
    "save_model",
    "verify_on_meta",
]

SPEC_METADATA_KEY = "torchspec.spec"
FORMAT_METADATA_KEY = "torchspec.format"
SpecSource = Spec | str | os.PathLike[str] | Mapping[str, Any]


def build(
    spec: SpecSource,
    *,
    seed: int | None = None,
    device: str | torch.device | None = None,
    variant: str | None = None,
    overrides: Iterable[str] = (),
) -> torch.nn.Module:
    """Compile a spec (path, mapping or Spec) into an initialised ``nn.Sequential`` (a
    ``torch.fx.GraphModule`` when its top-level layers are wired with ``from:``); ``variant`` and
    ``overrides`` (``--set`` arguments) are passed to :func:`~torchspec.spec.load_spec`."""
    spec = load_spec(spec, variant=variant, overrides=overrides)
    return build_from_report(infer_shapes(spec), seed=seed, device=device)


def build_from_report(
    report: ShapeReport, *, seed: int | None = None, device: str | torch.device | None = None
) -> torch.nn.Module:
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    rows = iter(report.rows)
    assert report.scope is not None and report.reads is not None
    with torch.device(device) if device is not None else nullcontext():
        return _Builder(report, rows).container(report.scope, top=True)


class _Builder:
    def __init__(self, report: ShapeReport, rows: Iterator[LayerRow]) -> None:
        self.report = report
        self.rows = rows  # leaves in file order: the walk below meets them in the same order

    def container(self, scope: Scope, top: bool = False) -> torch.nn.Module:
        import torch.nn as nn

        children: list[tuple[str, nn.Module]] = []
        for node in scope.nodes:
            if node.scope is not None:
                children.append((node.name, self.container(node.scope)))
            else:
                row = next(self.rows)
                children.append((node.name, row.layer.torch_module(row.args)))
        if scope.path not in self.report.graphs:
            seq = nn.Sequential()
            for name, child in children:
                seq.add_module(name, child)
            return seq
        return self.graph(scope, children, top)

    def graph(self, scope: Scope, children: list[tuple[str, torch.nn.Module]], top: bool) -> torch.nn.Module:
        """A GraphModule running the children in file order, each on what it reads."""
        import torch.fx as fx
        import torch.nn as nn

        reads = self.report.reads or {}
        root = nn.Module()
        graph = fx.Graph()
        given = graph.placeholder("x")
        values: list[fx.Node] = []
        for node, (name, child) in zip(scope.nodes, children):
            root.add_module(name, child)
            args = []
            for read, index in zip(node.reads, reads[node.path]):
                value = given if read.pos < 0 else values[read.pos]
                for i in index:
                    value = graph.call_function(operator.getitem, (value, i))
                args.append(value)
            # value names come from validated identifiers, and fx renames keywords and builtins;
            # "self" is the one name it would let shadow the module in the generated forward
            values.append(
                graph.create_node("call_module", name, tuple(args), name="self_" if name == "self" else None)
            )
        out = values[-1]
        if top:  # the model returns a tensor: the main output of a tuple-returning last layer
            last = self.report.rows[-1].out
            while last is not None and not isinstance(last, tuple):
                out = graph.call_function(operator.getitem, (out, 0))
                last = last.items[0]
        graph.output(out)
        return fx.GraphModule(root, graph, class_name="GraphModule")


def verify_on_meta(report: ShapeReport) -> tuple[int, ...]:
    """Run the built module on the meta device (no memory) and check it gives the inferred shape."""
    import torch

    model = build_from_report(report, device="meta").eval()
    with torch.no_grad():
        out = model(torch.empty(report.input, device="meta"))
    got = tuple(out.shape)
    if got != tuple(report.output):
        raise AssertionError(
            f"torch computed output {list(got)} but torchspec inferred {list(report.output)}; "
            "this is a torchspec bug, please report it with your spec"
        )
    return got


def provenance(doc: Document) -> dict[str, str]:
    """The variant and ``--set`` arguments a spec was expanded with (empty when none): recorded
    beside the expanded spec in checkpoints and safetensors metadata, for the record."""
    out = {"variant": doc.variant} if doc.variant is not None else {}
    sets = list(dict.fromkeys(doc.overrides.values()))
    return {**out, "overrides": json.dumps(sets)} if sets else out


def save_model(
    model: torch.nn.Module, spec: Spec, path: str | os.PathLike[str], *, made_from: Spec | None = None
) -> None:
    """Write the weights as safetensors with the spec in the file's metadata (no pickle).

    The spec is stored expanded (so :func:`load_model` rebuilds the same network); the variant and
    ``--set`` arguments of ``made_from`` (default: ``spec``) go in ``torchspec.variant`` and
    ``torchspec.overrides``.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {SPEC_METADATA_KEY: json.dumps(spec.to_data()), FORMAT_METADATA_KEY: "1"}
    metadata.update({f"torchspec.{k}": v for k, v in provenance((made_from or spec).document).items()})
    with atomic_path(path) as tmp:  # a unique temp file renamed into place: never a torn file
        save_file(state, tmp, metadata=metadata)


def read_safetensors(path: str | os.PathLike[str]) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, state_dict) from a .safetensors file written by torchspec; a SpecError naming the
    file if it cannot be read, is not a safetensors file, or carries no spec."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    file = os.fspath(path)
    if not os.path.isfile(file):
        what = "is a directory" if os.path.isdir(file) else "does not exist"
        raise SpecError.single(file, f"cannot read {file}: it {what}")
    try:
        with safe_open(file, framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(file, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError.single(
            file,
            f"cannot read {file}: not a valid safetensors file ({reason})",
            hints=["pass a model.safetensors written by `torchspec train` or `torchspec build -o`"],
        ) from None
    if SPEC_METADATA_KEY not in metadata:
        raise SpecError.single(
            file,
            "this safetensors file carries no torchspec spec in its metadata",
            hints=["write it with `torchspec build SPEC -o model.safetensors` or `torchspec train`"],
        )
    try:
        data = json.loads(metadata[SPEC_METADATA_KEY])
    except ValueError as exc:
        raise SpecError.single(file, f"the spec in {file}'s metadata is not valid JSON: {exc}") from None
    return load_spec(data, expand=False), state  # stored expanded


def load_model(path: str | os.PathLike[str], *, device: str | None = None) -> torch.nn.Module:
    """Rebuild a model from one .safetensors file written by ``torchspec build -o`` or training."""
    spec, state = read_safetensors(path)
    model = build(spec)
    model.load_state_dict(state, strict=True)
    return model.to(device) if device is not None else model
