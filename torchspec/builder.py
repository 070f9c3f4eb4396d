"""Compiling a spec into torch; saving and loading weights with the spec inside.

This is the only place, with training, that imports torch. Each leaf becomes
``layer.torch_module(args)`` (``torch.nn.<type>(**args)``, or torchspec's own module for merges)
with the arguments the shape inference resolved, so the module is exactly what the table printed;
a learned tensor (``Parameter``) becomes an ``nn.Parameter`` its container holds (a ``get_attr``).
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
from typing import TYPE_CHECKING, Any, Literal, overload

from torchspec.artefacts import check_state, load_embedded_spec, not_torchspec
from torchspec.errors import SpecError
from torchspec.fileio import atomic_path
from torchspec.graph import Scope
from torchspec.infer import LayerRow, ShapeReport, infer_shapes
from torchspec.inputs import INDEX
from torchspec.memory import check_size
from torchspec.reading import open_regular
from torchspec.safetensors_file import DIGEST_KEY, digest, parse
from torchspec.source import Document
from torchspec.spec import Spec, load_spec

if TYPE_CHECKING:
    import torch

__all__ = [
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

SPEC_METADATA_KEY = "torchspec.spec"
FORMAT_METADATA_KEY = "torchspec.format"
DIGEST_METADATA_KEY = DIGEST_KEY  # sha256 of the spec and tensors (torchspec.safetensors_file.digest)
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


def provenance(doc: Document) -> dict[str, str]:
    """The variant and ``--set`` arguments a spec was expanded with (empty when none): recorded
    beside the expanded spec in checkpoints and safetensors metadata, for the record."""
    out = {"variant": doc.variant} if doc.variant is not None else {}
    sets = list(dict.fromkeys(doc.overrides.values()))
    return {**out, "overrides": json.dumps(sets)} if sets else out


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` holding a NaN or an infinity."""
    import torch

    return [
        name
        for name, tensor in state.items()
        if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point()
        and not bool(torch.isfinite(tensor).all())
    ]


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def save_model(
    model: torch.nn.Module,
    spec: Spec,
    path: str | os.PathLike[str],
    *,
    made_from: Spec | None = None,
    state: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Write the weights as safetensors with the spec and a digest of both in the metadata.

    ``state``: the weights to write instead of ``model``'s own (a state_dict of the same model,
    e.g. the best epoch's, or an EMA of the weights).

    The spec is stored expanded (so :func:`load_model` rebuilds the same network); the variant and
    ``--set`` arguments of ``made_from`` (default: ``spec``) go in ``torchspec.variant`` and
    ``torchspec.overrides``. Non-finite weights are never written: a SpecError names the file and
    the tensors.
    """
    from safetensors.torch import save, save_file

    file = os.fspath(path)
    weights = model.state_dict() if state is None else state
    state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    bad = nonfinite_tensors(state)
    if bad:
        raise SpecError.single(
            file,
            f"refusing to write {file}: the weights are not finite (NaN or inf in {_names(bad)})",
            hints=["the model diverged: lower the learning rate or set train.grad_clip"],
        )
    metadata = {SPEC_METADATA_KEY: json.dumps(spec.to_data()), FORMAT_METADATA_KEY: "1"}
    metadata.update({f"torchspec.{k}": v for k, v in provenance((made_from or spec).document).items()})
    data = save(state, metadata=metadata)  # the exact bytes the file will hold for each tensor
    metadata[DIGEST_METADATA_KEY] = digest(data, parse(data, file))
    del data
    with atomic_path(path) as tmp:  # a unique temp file renamed into place: never a torn file
        save_file(state, tmp, metadata=metadata)


NO_VERIFY_HINT = (
    "if you trust this file, skip the check: --no-verify (eval, predict) or "
    "torchspec.load_model(path, verify=False)"
)
SAFETENSORS_HINTS = ("pass a model.safetensors written by `torchspec train` or `torchspec build -o`",)


def read_safetensors(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, state_dict) from a .safetensors file written by torchspec; a SpecError naming the file
    otherwise. Before any tensor is loaded: the file must be a regular file that fits in memory, its
    header sound, its embedded spec a valid spec and its tensors' names and shapes the spec's
    analytic state; then (``verify``) the digest in its metadata must match its tensors, and every
    weight must be finite. ``verify=False`` skips only the digest, for files from elsewhere."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    file = os.fspath(path)
    handle, _ = open_regular(file, "safetensors file", SAFETENSORS_HINTS)
    with handle:
        data = handle.read()
    header = parse(data, file)
    if SPEC_METADATA_KEY not in header.metadata:
        raise not_torchspec(file, "its metadata carries no torchspec spec", SAFETENSORS_HINTS)
    spec = load_embedded_spec(header.metadata[SPEC_METADATA_KEY], file)
    check_state(
        infer_shapes(spec).state_shapes(),
        {name: entry.shape for name, entry in header.tensors.items()},
        file,
        ("the file was changed after torchspec wrote it, or it was not written by torchspec",),
        subject="the tensors in the file do not match the spec embedded in it",
    )
    if verify:
        stored = header.metadata.get(DIGEST_METADATA_KEY)
        if stored is None:
            raise SpecError.single(
                file,
                f"{file} carries no digest of its tensors, so its weights cannot be verified",
                hints=["files written by torchspec carry one", NO_VERIFY_HINT],
            )
        if stored != digest(data, header):
            raise SpecError.single(
                file,
                f"{file} is damaged: its tensors or spec do not match the digest written with them "
                "(the file was changed after it was written)",
                hints=["use an intact copy, or write the file again", NO_VERIFY_HINT],
            )
    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError.single(
            file, f"cannot read {file}: not a valid safetensors file ({reason})", hints=SAFETENSORS_HINTS
        ) from None
    bad = nonfinite_tensors(state)
    if bad:
        raise SpecError.single(
            file,
            f"{file} holds non-finite weights (NaN or inf in {_names(bad)})",
            hints=["the run that wrote it diverged: use an earlier checkpoint or train again"],
        )
    return spec, state


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
