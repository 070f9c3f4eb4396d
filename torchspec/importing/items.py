"""The traced graph as spec items: one per leaf call, learned tensor and glue layer, each owned by
the container (module path) whose forward made it, reading references to other items.

An alias (``x.contiguous()``, ``torch.cat([x])``, element ``i`` of a tuple output) makes no item: it
is a reference to what it aliases. A stateless leaf called twice (ResNet's ``relu``) is a second,
unnamed layer; a module with weights called twice shares them, which a spec cannot say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch.fx as fx
from torch import nn

from torchspec.importing.errors import ImportFailure, module_of, where
from torchspec.importing.glue import glue, is_tensor
from torchspec.importing.leaves import layer_type, leaf_layer
from torchspec.importing.trace import BATCHES, Traced, source_of

__all__ = ["INPUT", "Graph", "Item", "Ref", "read_items"]


class _Input:
    def __repr__(self) -> str:
        return "input"


INPUT: Any = _Input()  # the model's input, as a reference target


@dataclass(eq=False)
class Item:
    node: fx.Node
    order: int  # position of the node in the traced graph
    owner: str  # the container's module path ("" for the model itself)
    name: str | None  # the attribute name (modules, learned tensors); None for glue
    layer: dict[str, Any]
    inputs: list[Ref] = field(default_factory=list)
    glue: bool = False  # functional glue (may move to an outer container; it holds no state)


Ref = tuple[Any, tuple[int, ...]]  # (an Item or INPUT, the tuple element path)


@dataclass
class Graph:
    items: list[Item]
    output: Ref


def _parent(path: str) -> tuple[str, str]:
    head, _, last = path.rpartition(".")
    return head, last


def _innermost(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return re.sub(r"@\d+$", "", list(stack)[-1]) if stack else ""


def _module_inputs(node: fx.Node, module: nn.Module, where_: str) -> list[Any]:
    """The tensors a leaf call reads, in the order its layer takes them (``from:``)."""
    kwargs = dict(node.kwargs)
    if isinstance(module, nn.MultiheadAttention):
        kwargs.pop("need_weights", None)  # only the weights output (element 1) depends on it
        if kwargs or len(node.args) > 3:  # a mask (key_padding_mask, attn_mask) is never dropped
            given = sorted(kwargs) or [f"{len(node.args)} positional arguments"]
            raise ImportFailure(
                f"{where_}: MultiheadAttention called with {given}: not supported", hints=_MASK_HINT
            )
        q, k, v = [*node.args, None, None][:3]
        if k is None or (q is k and k is v):
            return [q]
        if k is v:
            return [q, k]
        return [q, k, v]
    if kwargs:
        raise ImportFailure(
            f"{where_}: called with keyword arguments {sorted(kwargs)}: not supported",
            hints=_MASK_HINT if any("mask" in k or "causal" in k for k in kwargs) else (),
        )
    return list(node.args)


# a mask is a forward argument, which a spec's layer (constructor arguments) does not take
_MASK_HINT = [
    "torchspec import does not read masks back; for a causal mask "
    "(generate_square_subsequent_mask), write causal: true on this layer in the spec by hand"
]


def read_items(traced: Traced) -> Graph:
    gm, values, model = traced.gm, traced.values, traced.model
    refs: dict[fx.Node, Ref] = {}
    items: list[Item] = []
    called: set[str] = set()
    output: Ref | None = None
    leaves = {path for path, m in model.named_modules() if layer_type(m) is not None}

    def ref(arg: Any, node: fx.Node) -> Ref:
        if not isinstance(arg, fx.Node) or arg not in refs:
            raise ImportFailure(f"{where(node)}: reads {arg!r}, which is not a tensor torchspec can wire")
        return refs[arg]

    for order, node in enumerate(gm.graph.nodes):
        if node.op == "placeholder":
            if refs:
                raise ImportFailure("the model's forward takes more than one input; a spec has one input")
            refs[node] = (INPUT, ())
        elif node.op == "get_attr":
            owner, name = _parent(str(node.target))
            value = gm.get_parameter(str(node.target)) if _is_parameter(gm, node) else None
            if value is None:
                raise ImportFailure(
                    f"{where(node)}: forward reads {node.target}, a tensor that is not an nn.Parameter "
                    "(a buffer or a constant); a spec holds learned tensors only"
                )
            if owner in leaves:
                raise ImportFailure(
                    f"{where(node)}: forward reads {node.target}, a weight of the layer {owner}, "
                    "directly; in a spec each layer keeps its weights to itself"
                )
            item = Item(node, order, owner, name, {"type": "Parameter", "shape": list(value.shape)})
            items.append(item)
            refs[node] = (item, ())
        elif node.op == "call_module":
            path = str(node.target)
            module = model.get_submodule(path)
            owner, name = _parent(path)
            layer = leaf_layer(path, module)
            shared = path in called
            if shared and any(True for _ in module.parameters(recurse=True)):
                raise ImportFailure(
                    f"{where(node)}: {path} is called twice and so shares its weights between two "
                    "places; each layer of a spec has its own"
                )
            called.add(path)
            inputs = [ref(a, node) for a in _module_inputs(node, module, where(node))]
            item = Item(node, order, owner, None if shared else name, layer, inputs)
            items.append(item)
            refs[node] = (item, ())
        elif node.op in ("call_function", "call_method"):
            found = _glue(node, values, model)
            if found is None:
                continue
            inputs = [ref(a, node) for a in found.inputs]
            if found.layer is None:
                target, index = inputs[0]
                refs[node] = (target, index + found.index)
                continue
            item = Item(node, order, _innermost(node), None, found.layer, inputs, glue=True)
            items.append(item)
            refs[node] = (item, ())
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node) or not is_tensor(values[result][0]):
                raise ImportFailure(
                    "the model returns more than one tensor (or no tensor); a spec's model returns one",
                    hints=["import a wrapper whose forward returns the one output"],
                )
            output = ref(result, node)
    assert output is not None
    _check_unused(model, called, items)
    items = _channel_shuffles(items, values)
    read = {id(r[0]) for item in items for r in item.inputs} | {id(output[0])}
    for item in items:
        if id(item) not in read:
            raise ImportFailure(
                f"{where(item.node)}: the result of {item.node.name} is never used (an in-place call "
                "whose result is dropped?); a spec's layers each give a new value",
                hints=["write `x = x.add(y)` rather than `x.add_(y)`"],
            )
    return Graph(items, output)


def _glue(node: fx.Node, values: Any, model: nn.Module) -> Any:
    """:func:`glue`, its error saying so when the call is in a module of the model's own that
    computes with its own weights (a custom leaf: torchspec knows torch.nn's layers only)."""
    try:
        return glue(node, values)
    except ImportFailure as exc:
        path = _innermost(node)
        module = model.get_submodule(path) if path else model
        weights = [a for a in node.all_input_nodes if a.op == "get_attr"]
        if not weights or not module._parameters or layer_type(module) is not None:
            raise
        cls, said = type(module), exc.message.removeprefix(module_of(node) + ", ")
        raise ImportFailure(
            f"{path or '<model>'} ({cls.__name__}, defined at {source_of(cls)}) is a module of the "
            f"model's own that computes with its own weights, not a torchspec layer: {said}",
            hints=["torchspec import knows torch.nn's layers; replace it with them, or write it as a block"],
        ) from None


def _channel_shuffles(items: list[Item], values: Any) -> list[Item]:
    """ShuffleNet's ``view(n, g, c // g, h, w)``, ``transpose(1, 2)``, ``view(n, c, h, w)``: one
    ChannelShuffle(g) (the same permutation of the channels, exactly), when nothing else reads the
    steps between."""
    readers: dict[int, int] = {}
    for item in items:
        for r in item.inputs:
            readers[id(r[0])] = readers.get(id(r[0]), 0) + 1
    gone: set[int] = set()
    for last in items:
        if last.layer.get("type") != "Reshape" or last.layer.get("include_batch") or len(last.inputs) != 1:
            continue
        middle = last.inputs[0][0]
        if middle is INPUT or middle.layer.get("type") != "Permute" or readers.get(id(middle)) != 1:
            continue
        first = middle.inputs[0][0]
        if first is INPUT or first.layer.get("type") != "Reshape" or readers.get(id(first)) != 1:
            continue
        split, merged, dims = first.layer["shape"], last.layer["shape"], middle.layer["dims"]
        rank = len(split) + 1
        if first.layer.get("include_batch") or dims != [0, 2, 1, *range(3, rank)]:
            continue
        if len(split) != len(merged) + 1 or split[0] * split[1] != merged[0] or split[2:] != merged[1:]:
            continue
        source = first.node.args[0]
        if not isinstance(source, fx.Node) or values[source][0] != ("tensor", (BATCHES[0], *merged)):
            continue  # the channels split and merged again must be the input's
        if (
            first.owner != last.owner
            or middle.owner != last.owner
            or last.inputs[0][1]
            or middle.inputs[0][1]
        ):
            continue
        last.layer = {"type": "ChannelShuffle", "groups": split[0]}
        last.inputs = list(first.inputs)
        gone |= {id(first), id(middle)}
    return [item for item in items if id(item) not in gone]


def _is_parameter(gm: fx.GraphModule, node: fx.Node) -> bool:
    try:
        gm.get_parameter(str(node.target))
    except AttributeError:
        return False
    return True


def _check_unused(model: nn.Module, called: set[str], items: list[Item]) -> None:
    """A module with weights that forward never calls (in eval mode) would leave keys out."""
    used = called | {f"{i.owner}.{i.name}".lstrip(".") for i in items if i.layer["type"] == "Parameter"}

    def reached(path: str) -> bool:
        return any(u == path or u.startswith(path + ".") or path.startswith(u + ".") for u in used)

    for key in model.state_dict(keep_vars=True):
        if reached(key):
            continue
        parts = key.split(".")
        path = next(".".join(parts[:n]) for n in range(1, len(parts) + 1) if not reached(".".join(parts[:n])))
        owner = model.get_submodule(path) if path != key else model.get_submodule(key.rpartition(".")[0])
        raise ImportFailure(
            f"{path} ({type(owner).__name__}, {source_of(type(owner))}) holds {key} but forward never "
            "uses it in eval mode, so the spec would not hold it",
            hints=[
                "training-only parts (GoogLeNet's auxiliary heads) are not imported: build the "
                "model without them (aux_logits=False)"
            ],
        )
