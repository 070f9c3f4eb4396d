"""Compiling a spec into torch; saving and loading weights with the spec inside.

This is the only place, with training, that imports torch. Each leaf becomes
``layer.torch_module(args)`` (``torch.nn.<type>(**args)``, or torchspec's own module for merges)
with the arguments the shape inference resolved, so the module is exactly what the table printed;
a learned tensor (``Parameter``) becomes an ``nn.Parameter`` its container holds (a ``get_attr``).
A container becomes ``nn.Sequential``; one whose layers read each other (``from:``) or pass tuples
on becomes a ``torch.fx.GraphModule`` built from a ``torch.fx.Graph``: one ``call_module`` per
child (by its name), ``operator.getitem`` for tuple elements. Children keep their names either
way, so state_dict keys are the dotted names whatever the wiring.

The weights file (model.safetensors, the spec inside) is written and read by
:mod:`torchspec.model_file`, re-exported here; :func:`load_model` rebuilds a model from it.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal, overload

from torchspec.graph import Scope
from torchspec.infer import LayerRow, ShapeReport, infer_shapes
from torchspec.inputs import INDEX
from torchspec.memory import check_size
from torchspec.model_file import (
    DIGEST_METADATA_KEY,
    FORMAT_METADATA_KEY,
    NO_VERIFY_HINT,
    SAFETENSORS_HINTS,
    SPEC_METADATA_KEY,
    nonfinite_tensors,
    provenance,
    read_safetensors,
    save_model,
)
from torchspec.spec import Spec, load_spec

if TYPE_CHECKING:
    import torch

__all__ = [
    "DIGEST_METADATA_KEY",
    "FORMAT_METADATA_KEY",
    "NO_VERIFY_HINT",
    "SAFETENSORS_HINTS",
    "SPEC_METADATA_KEY",
    "build",
    "build_from_report",
    "check_memory",
    "load_model",
    "nonfinite_tensors",
    "provenance",
    "random_input",
    "read_safetensors",
    "save_model",
    "verify_on_meta",
]

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

        children: list[tuple[str, Any]] = []  # modules, and nn.Parameter for learned tensors
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

    def graph(self, scope: Scope, children: list[tuple[str, Any]], top: bool) -> torch.nn.Module:
        """A GraphModule running the children in file order, each on what it reads."""
        import torch.fx as fx
        import torch.nn as nn

        reads = self.report.reads or {}
        root = nn.Module()
        graph = fx.Graph()
        given = graph.placeholder("x")
        values: list[fx.Node] = []
        for node, (name, child) in zip(scope.nodes, children):
            fx_name = "self_" if name == "self" else None
            if node.layer.learned_tensor:  # an nn.Parameter the container holds: key `name`
                root.register_parameter(name, child)
                values.append(graph.create_node("get_attr", name, name=fx_name))
                continue
            root.add_module(name, child)
            args = []
            for read, index in zip(node.reads, reads[node.path]):
                value = given if read.pos < 0 else values[read.pos]
                for i in index:
                    value = graph.call_function(operator.getitem, (value, i))
                args.append(value)
            # torch's forward order: MultiheadAttention's (x) is (x, x, x), its (q, kv) is (q, kv, kv)
            args = [args[i] for i in node.layer.torch_inputs(len(args))]
            # value names come from validated identifiers, and fx renames keywords and builtins;
            # "self" is the one name it would let shadow the module in the generated forward
            values.append(graph.create_node("call_module", name, tuple(args), name=fx_name))
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
        dtype = torch.int64 if report.input_dtype == INDEX else torch.float32
        out = model(torch.empty(report.input, device="meta", dtype=dtype))
    got = tuple(out.shape)
    if got != tuple(report.output):
        raise AssertionError(
            f"torch computed output {list(got)} but torchspec inferred {list(report.output)}; "
            "this is a torchspec bug, please report it with your spec"
        )
    return got


def random_input(
    report: ShapeReport, generator: torch.Generator | None = None, count: int | None = None
) -> torch.Tensor:
    """A random batch of the spec's input (``count`` samples, default the report's batch):
    standard-normal float32, or int64 token ids drawn uniformly from ``report.id_range``."""
    import torch

    shape = (report.batch if count is None else count, *report.input[1:])
    ids = report.id_range
    if ids is None:
        return torch.randn(shape, generator=generator)
    return torch.randint(ids[0], ids[1], shape, generator=generator, dtype=torch.int64)


def check_memory(report: ShapeReport, file: str) -> None:
    """Refuse to build a model whose parameters would not fit in the memory available now."""
    check_size(report.param_bytes, f"building the model of {file} ({report.params:,} parameters)", file)


@overload
def load_model(
    path: str | os.PathLike[str],
    *,
    device: str | None = ...,
    verify: bool = ...,
    with_spec: Literal[False] = ...,
) -> torch.nn.Module: ...


@overload
def load_model(
    path: str | os.PathLike[str], *, device: str | None = ..., verify: bool = ..., with_spec: Literal[True]
) -> tuple[torch.nn.Module, Spec]: ...


def load_model(
    path: str | os.PathLike[str], *, device: str | None = None, verify: bool = True, with_spec: bool = False
) -> torch.nn.Module | tuple[torch.nn.Module, Spec]:
    """Rebuild a model from a model.safetensors (``torchspec build -o`` or training) or a training
    checkpoint (.ckpt), in ``eval()`` mode; ``(model, spec)`` with ``with_spec=True``.

    Everything :func:`read_safetensors` (or, for a .ckpt, the checkpoint reader: CRCs, structure,
    finite tensors) checks is checked first; ``verify=False`` skips a .safetensors digest check,
    for a file written elsewhere that you trust (a checkpoint's CRCs are always checked).
    """
    file = os.fspath(path)
    if file.endswith(".ckpt"):
        from torchspec.training.checkpoint import read_weights

        spec, state = read_weights(file)
    else:
        spec, state = read_safetensors(path, verify=verify)
    report = infer_shapes(spec)
    check_memory(report, file)
    model = build_from_report(report)
    model.load_state_dict(state, strict=True)  # names and shapes were checked against the spec
    model.eval()  # for inference: dropout off, BatchNorm on its running statistics
    model = model.to(device) if device is not None else model
    return (model, spec) if with_spec else model
