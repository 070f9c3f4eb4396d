"""The functional glue of a forward -> torchspec's layers.

``x + y`` is Add, ``torch.cat(xs, 1)`` Concat, ``torch.flatten(x, 1)`` Flatten, ``F.relu`` ReLU,
``x.mean([2, 3])`` Mean, ``x.view(n, g, c // g, h, w)`` Reshape (the batch kept), ``x.permute``
and ``x.transpose`` Permute, ``x[:, 0]`` Select, ``x.chunk`` Chunk, ``token.expand(n, -1, -1)``
ExpandBatch. Ints computed from sizes (``x.size(0)``, ``c // 2``) and ``torch._assert`` make no
layer: their values were recorded at two batch sizes (:mod:`torchspec.importing.trace`), so each
is a constant or the batch. Anything else is an error naming the call and where it is.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx

from torchspec.importing.errors import ImportFailure, where
from torchspec.importing.functions import ACTIVATIONS, ADD, CAT, MUL, POOLS, WINDOWS
from torchspec.importing.trace import BATCHES, Value

__all__ = ["BATCH", "Glue", "glue"]

BATCH = "batch"  # an int that is the batch size


@dataclass
class Glue:
    """A layer (``layer``, reading ``inputs``), or with ``layer`` None an alias: the value is
    ``inputs[0]``'s element ``index`` (``()``: the value itself)."""

    layer: dict[str, Any] | None
    inputs: list[Any]  # fx nodes
    index: tuple[int, ...] = field(default=())


def is_tensor(value: Value) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and value[0] == "tensor"


def _holds_tensor(value: Value) -> bool:
    return is_tensor(value) or (isinstance(value, tuple) and any(_holds_tensor(v) for v in value))


class _Context:
    def __init__(self, node: fx.Node, values: dict[fx.Node, tuple[Value, Value]]) -> None:
        self.node, self.values = node, values

    def fail(self, what: str, hints: list[str] | None = None) -> ImportFailure:
        return ImportFailure(f"{where(self.node)}: {what}", hints or [])

    def shape(self, arg: Any, at: int = 0) -> tuple[int, ...]:
        value: Any = self.values[arg][at] if isinstance(arg, fx.Node) else None
        if not is_tensor(value):
            raise self.fail(f"{_describe(self.node)} reads {arg!r}, which is not a tensor")
        return tuple(value[1])

    def scalar(self, arg: Any) -> Any:
        """A constant (int, float, bool, None, str, nested tuples of them) or BATCH."""
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.scalar(a) for a in arg)
        if not isinstance(arg, fx.Node):
            return arg
        small, large = self.values[arg]
        if small == large and not _holds_tensor(small):
            return small
        if (small, large) == BATCHES:
            return BATCH
        raise self.fail(
            f"{_describe(self.node)} takes {arg.name}, a value that depends on the batch size "
            f"({small} at batch {BATCHES[0]}, {large} at batch {BATCHES[1]}) in a way a spec cannot say"
        )

    def bind(self, names: tuple[tuple[str, Any], ...], skip: int = 1) -> dict[str, Any]:
        """The call's arguments after the first ``skip`` by name, with their defaults."""
        bound = dict(names)
        for (key, _), arg in zip(names, self.node.args[skip:]):
            bound[key] = arg
        for key, arg in self.node.kwargs.items():
            if key not in bound:
                raise self.fail(f"{_describe(self.node)}: argument {key!r} is not supported")
            bound[key] = arg
        return {key: self.scalar(value) for key, value in bound.items()}


def _describe(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return f"the method .{target}()"
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", None) or ""
    return f"{module + '.' if module and module != '_operator' else ''}{name}()"


def _layer(type_name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A layer dict without the arguments equal to torch's defaults."""
    data: dict[str, Any] = {"type": type_name}
    for key, value in given.items():
        value = list(value) if isinstance(value, tuple) else value
        if key in defaults and defaults[key] == value:
            continue
        data[key] = value
    return data


def _key(node: fx.Node) -> Any:
    return node.target


def _merge(c: _Context, type_name: str) -> Glue:
    tensors = [a for a in c.node.args if isinstance(a, fx.Node) and is_tensor(c.values[a][0])]
    if len(tensors) != 2 or len(c.node.args) != 2 or c.node.kwargs:
        raise c.fail(
            f"{_describe(c.node)} with a number or extra arguments: "
            f"torchspec's {type_name} merges tensors only",
            hints=["torchspec has no layer for arithmetic with constants"],
        )
    return Glue({"type": type_name}, tensors)


def _dims(args: tuple[Any, ...]) -> list[Any]:
    """``x.permute(0, 2, 1)`` and ``x.permute([0, 2, 1])`` alike."""
    return list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)


def _reshape(c: _Context, x: fx.Node) -> Glue:
    before, after = c.shape(x), c.shape(c.node)
    after_large = c.shape(c.node, 1)
    if after[0] == BATCHES[0] and after_large[0] == BATCHES[1]:  # the batch is kept
        if len(after) == 2 and len(before) > 2:
            return Glue({"type": "Flatten"}, [x])
        if after[1:] == before[1:]:
            return Glue(None, [x])
        return Glue({"type": "Reshape", "shape": list(after[1:])}, [x])
    raw = c.node.args[1:] if c.node.op == "call_method" else c.node.args[1:2]
    shape = [c.scalar(v) for v in _dims(tuple(raw))]
    if BATCH in shape or shape.count(-1) > 1:
        raise c.fail(
            f"{_describe(c.node)} to {list(after)} at batch {BATCHES[0]}: a reshape that moves the batch is "
            "written with constants and at most one -1 in a spec",
            hints=["use -1 for the dimension that holds the batch"],
        )
    return Glue({"type": "Reshape", "shape": shape, "include_batch": True}, [x])


def _getitem(c: _Context) -> Glue | None:
    x, index = c.node.args
    value = c.values[x][0] if isinstance(x, fx.Node) else None
    if not _holds_tensor(value):
        return None  # ints: an element of a size
    if not is_tensor(value) and isinstance(index, int):
        return Glue(None, [x], (index,))  # an element of a tuple output (chunk, LSTM, attention)
    items = list(index) if isinstance(index, tuple) else [index]
    full = slice(None, None, None)
    if items and isinstance(items[-1], int) and all(i == full for i in items[:-1]) and len(items) > 1:
        return Glue({"type": "Select", "dim": len(items) - 1, "index": items[-1]}, [x])
    raise c.fail(f"indexing {x} with [{index}]: torchspec selects one index of one dimension (Select) only")


def _expand(c: _Context, x: fx.Node) -> Glue:
    sizes = [c.scalar(v) for v in _dims(tuple(c.node.args[1:]))]
    shape = c.shape(x)
    keeps = all(s in (-1, d) for s, d in zip(sizes[1:], shape[1:]))
    source = _batch_source(c.node.args[1] if len(c.node.args) > 1 else None)
    if sizes[0] == BATCH and shape[0] == 1 and len(sizes) == len(shape) and keeps and source is not None:
        return Glue({"type": "ExpandBatch"}, [x, source])
    raise c.fail(f"{_describe(c.node)} to {sizes}: only a [1, ...] tensor expanded to the batch is supported")


def _batch_source(arg: Any) -> fx.Node | None:
    """T in ``T.size(0)``, ``T.shape[0]`` (``n, *_ = T.shape`` too)."""
    if isinstance(arg, (list, tuple)) and arg:
        return _batch_source(arg[0])
    if not isinstance(arg, fx.Node):
        return None
    if arg.op == "call_method" and arg.target == "size" and len(arg.args) == 2 and arg.args[1] == 0:
        return arg.args[0] if isinstance(arg.args[0], fx.Node) else None
    if arg.target is operator.getitem and arg.args[1] == 0 and isinstance(arg.args[0], fx.Node):
        sizes = arg.args[0]
        if sizes.op == "call_method" and sizes.target == "size" and len(sizes.args) == 1:
            return sizes.args[0] if isinstance(sizes.args[0], fx.Node) else None
        if sizes.op == "call_function" and sizes.target is getattr and sizes.args[1] == "shape":
            return sizes.args[0] if isinstance(sizes.args[0], fx.Node) else None
    return None


def glue(node: fx.Node, values: dict[fx.Node, tuple[Value, Value]]) -> Glue | None:
    """The layer or alias ``node`` (a call_function or call_method) is; None: it makes no tensor."""
    c = _Context(node, values)
    key = _key(node)
    if key is operator.getitem:
        return _getitem(c)
    if not _holds_tensor(values[node][0]):
        return None  # sizes, their arithmetic, torch._assert: already evaluated
    x = node.args[0] if node.args else None
    if key in ADD:
        return _merge(c, "Add")
    if key in MUL:
        return _merge(c, "Mul")
    if key in CAT:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = c.bind((("dim", 0),))["dim"]
        if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, fx.Node) for t in tensors):
            raise c.fail(f"{_describe(node)} of {tensors!r}: a list of tensors is supported")
        if len(tensors) == 1:
            return Glue(None, [tensors[0]])
        return Glue(_layer("Concat", {"dim": dim}, {"dim": 1}), list(tensors))
    if not isinstance(x, fx.Node):
        mask = "generate_square_subsequent_mask" in (node.stack_trace or "")
        hints = ["a causal mask is a layer's causal: true in a spec: write it by hand"] if mask else None
        raise c.fail(f"{_describe(node)} has no layer in torchspec", hints)
    if key in ACTIVATIONS:
        type_name, names = ACTIVATIONS[key]
        args = c.bind(names)
        if key in ("relu_",):
            args["inplace"] = True
        args.pop("training", None)  # F.dropout(x, p, self.training): a Dropout layer does the same
        return Glue(_layer(type_name, args, dict(names)), [x])
    if key in POOLS:
        return Glue(_layer(POOLS[key], c.bind((("output_size", None),)), {}), [x])
    if key in WINDOWS:
        type_name, names = WINDOWS[key]
        args = c.bind(names)
        if args.pop("return_indices", False) or args.pop("antialias", False):
            raise c.fail(f"{_describe(node)} with return_indices or antialias: not supported")
        return Glue(_layer(type_name, args, dict(names)), [x])
    if key in (torch.flatten, "flatten"):
        args = c.bind((("start_dim", 0), ("end_dim", -1)))
        if args["start_dim"] == 0:
            raise c.fail(
                f"{_describe(node)} from dimension 0 flattens the batch", hints=["flatten from dimension 1"]
            )
        return Glue(_layer("Flatten", args, {"start_dim": 1, "end_dim": -1}), [x])
    if key in (torch.mean, "mean"):
        args = c.bind((("dim", None), ("keepdim", False)))
        if args["dim"] is None:
            raise c.fail(f"{_describe(node)} over every dimension averages over the batch too")
        return Glue(_layer("Mean", args, {"keepdim": False}), [x])
    if key in (torch.permute, "permute"):
        dims = [c.scalar(d) for d in _dims(tuple(node.args[1:]) or tuple(node.kwargs.values()))]
        return Glue({"type": "Permute", "dims": dims}, [x])
    if key in (torch.transpose, "transpose"):
        args = c.bind((("dim0", None), ("dim1", None)))
        rank = len(c.shape(x))
        dims = list(range(rank))
        a, b = args["dim0"] % rank, args["dim1"] % rank
        dims[a], dims[b] = dims[b], dims[a]
        return Glue({"type": "Permute", "dims": dims}, [x])
    if key in (torch.reshape, "view", "reshape"):
        return _reshape(c, x)
    if key == "contiguous":
        return Glue(None, [x])
    if key in (torch.chunk, "chunk"):
        args = c.bind((("chunks", None), ("dim", 0)))
        return Glue(_layer("Chunk", args, {"dim": 1}), [x])
    if key in (torch.select, "select"):
        return Glue({"type": "Select", **c.bind((("dim", None), ("index", None)))}, [x])
    if key == "expand":
        return _expand(c, x)
    raise c.fail(
        f"{_describe(node)} has no torchspec layer",
        hints=[
            "torchspec import maps +, *, torch.cat, flatten, mean, view/reshape, permute, "
            "transpose, chunk, select, indexing, pooling, interpolate and the common activations"
        ],
    )
