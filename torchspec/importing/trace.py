"""Tracing a module with torch.fx, keeping torchspec's layers as leaves, and recording every value.

The tracer stops at each module that is a torchspec layer (:func:`torchspec.importing.leaves.layer_type`)
and traces through everything else (containers, blocks of the model's own). The graph is then run
twice on fake tensors (no memory, no compute), at batch sizes 2 and 3, so every node's value is
known: a tensor's shape, or an int (``x.size(0)``, ``c // 2``) that is either a constant or the
batch size (the same at both sizes, or 2 then 3). Anything else depends on the batch in a way a
spec cannot say.
"""

from __future__ import annotations

import inspect
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from torchspec.importing.errors import ImportFailure, where
from torchspec.importing.leaves import layer_type

__all__ = ["BATCHES", "Traced", "Value", "check_train_mode", "source_of", "trace"]

BATCHES = (2, 3)
# A node's value at each batch size: ("tensor", shape), an int, a tuple of values, None, or ("other", repr)
Value = Any


@dataclass
class Traced:
    model: nn.Module
    gm: fx.GraphModule
    values: dict[fx.Node, tuple[Value, Value]] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)  # id(module) -> its path in the model


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return layer_type(m) is not None


def _summary(value: Any) -> Value:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(int(s) for s in value.shape))
    if isinstance(value, torch.Size):
        return tuple(int(s) for s in value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_summary(v) for v in value)
    return ("other", type(value).__name__)


class _Runner(nn.Module):
    """Runs the graph node by node (a module, so ``functional_call`` can swap its tensors)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__()
        self.gm = gm

    def forward(self, x: torch.Tensor) -> dict[fx.Node, Value]:
        recorder = _Recorder(self.gm)
        recorder.run(x)
        return recorder.seen


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.seen: dict[fx.Node, Value] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except ImportFailure:
            raise
        except Exception as exc:
            raise ImportFailure(
                f"{where(n)}: running {n.op} {_target_name(n)} on an input of the given shape failed: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                hints=["check --input (one sample, without the batch dimension)"],
            ) from None
        self.seen[n] = _summary(out)
        return out


def _target_name(n: fx.Node) -> str:
    target = n.target
    return str(target) if isinstance(target, str) else getattr(target, "__name__", repr(target))


def _user_frame(exc: BaseException, paths: dict[int, str]) -> str:
    """``path (Class), file:line`` of the innermost frame of the model's own code in ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    torch_dir = os.path.dirname(torch.__file__)
    module_at = ""
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame whose `self` is one of the model's modules
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in paths:
            module_at = f"{paths[id(owner)] or '<model>'} ({type(owner).__name__})"
        tb = tb.tb_next
    for frame in reversed(frames):
        if not frame.filename.startswith(torch_dir):
            line = f"{frame.filename}:{frame.lineno}"
            code = f": {frame.line.strip()}" if frame.line else ""
            return f"{module_at + ', ' if module_at else ''}{line}{code}"
    return module_at or "<unknown place>"


def trace(model: nn.Module, sample: tuple[int, ...], ids: int | None = None) -> Traced:
    """Trace ``model`` (in eval mode) and record every node's value at batch sizes 2 and 3; with
    ``ids`` the input is int64 token ids (0 .. ids - 1) rather than floats."""
    model.eval()
    paths = {id(m): p for p, m in model.named_modules()}
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx's TraceError, or the model's own code failing on a Proxy
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = (
            "torchspec specs have no data-dependent control flow; write the model without it"
            if "control flow" in text or "iterated" in text or "bool" in text
            else "torch.fx could not trace this model"
        )
        raise ImportFailure(
            f"cannot trace the model: {text} (at {_user_frame(exc, paths)})", hints=[hint]
        ) from None
    inputs = [n.name for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ImportFailure(
            f"{type(model).__name__}.forward takes {len(inputs)} inputs ({', '.join(inputs)}); a spec's "
            "model takes one tensor",
            hints=["import a wrapper whose forward takes the one input"],
        )
    _annotate(graph, model)
    gm = fx.GraphModule(tracer.root, graph)
    traced = Traced(model, gm, paths=paths)
    runs = []
    # on the meta device: the model's tensors swapped for meta copies of them for the call (no
    # memory, no compute), the model itself untouched
    state = {f"gm.{k}": v.to("meta") for k, v in [*gm.named_parameters(), *gm.named_buffers()]}
    runner = _Runner(gm)
    for batch in BATCHES:
        dtype = torch.int64 if ids else torch.float32
        given = torch.zeros((batch, *sample), dtype=dtype, device="meta")
        with torch.no_grad():
            runs.append(torch.func.functional_call(runner, state, (given,), strict=False))
    for node in gm.graph.nodes:
        traced.values[node] = (runs[0].get(node), runs[1].get(node))
    return traced


def _annotate(graph: fx.Graph, model: nn.Module) -> None:
    """Nodes of the model's own forward get its class in their module stack (for messages)."""
    for node in graph.nodes:
        if not node.meta.get("nn_module_stack"):
            node.meta["nn_module_stack"] = {"": ("", type(model))}


def check_train_mode(traced: Traced) -> None:
    """The model traced in train mode must run the same calls as in eval mode: a spec's layers
    (Dropout, BatchNorm, StochasticDepth) switch by themselves, but training-only code of the model's
    own (a hand-written dropout) would silently be left out of a spec traced in eval mode."""
    model = traced.model
    model.train()
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportFailure(
            f"cannot trace the model in train mode: {text} (at {_user_frame(exc, traced.paths)})"
        ) from None
    finally:
        model.eval()
    _annotate(graph, model)
    evals = list(traced.gm.graph.nodes)
    trains = list(graph.nodes)
    for i, node in enumerate(trains):
        if i >= len(evals) or (node.op, _target_name(node)) != (evals[i].op, _target_name(evals[i])):
            break
    else:
        if len(trains) == len(evals):
            return
        node = evals[len(trains)]
    raise ImportFailure(
        f"{where(node)}: forward computes something else in train mode than in eval mode from here on; "
        "a spec's layers behave as the model in both modes",
        hints=[
            "training-only code of the model's own (a hand-written dropout) cannot be imported: use "
            "torch.nn's layers (nn.Dropout) or torchvision's StochasticDepth"
        ],
    )


def source_of(cls: type) -> str:
    """``file:line`` where a class is defined, for messages."""
    try:
        return f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (OSError, TypeError):
        return getattr(cls, "__module__", "?")
