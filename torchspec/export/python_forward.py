"""The forward of a generated ``nn.Module`` class, one line per layer with its output shape.

A value only the next layer reads runs through one variable (``x``, or ``out`` when the input
itself is read again later, as a residual block's shortcut does); a value read further on keeps a
name of its own (the layer's name). torchspec's merges and tensor ops are written as the torch
expressions they compute (``a + b``, ``torch.cat([a, b], dim=1)``, ``x.permute(0, 2, 1)``).
"""

from __future__ import annotations

import keyword
from typing import Any

from torchspec.export.python_text import INLINE, Call, Raw, literal
from torchspec.graph import Scope

__all__ = ["write_forward"]

_RESERVED = {"self", "x", "out", "torch", "nn"}


def write_forward(drafter: Any, draft: Any, scope: Scope, attrs: dict[str, str], top: bool) -> None:
    nodes = scope.nodes
    readers: dict[int, set[int]] = {}
    for j, node in enumerate(nodes):
        for read in node.reads:
            readers.setdefault(read.pos, set()).add(j)
    # the next layer that computes something (a learned tensor leaves the running variable alone)
    after = {i: next((j for j in range(i + 1, len(nodes)) if not _learned(drafter, nodes[j])), -2)
             for i in range(-1, len(nodes))}  # fmt: skip
    kept_input = not readers.get(-1, set()) <= {after[-1]}
    running = "out" if kept_input else "x"
    names: dict[int, str] = {-1: "x"}
    used = set(_RESERVED)
    reads = drafter.report.reads or {}
    for i, node in enumerate(nodes):
        row = drafter.rows.get(node.path)
        if _learned(drafter, node):
            names[i] = attrs[node.name]
            continue
        ins = []
        for read, index in zip(node.reads, reads[node.path]):
            ins.append(names[read.pos] + "".join(f"[{k}]" for k in index))
        if readers.get(i, set()) <= {after[i]}:
            target = running
        else:
            target = _local(node.name, row.layer.type_name() if row else "block", used)
        names[i] = target
        if node.scope is not None:
            expr: Any = Call(attrs[node.name], [(None, Raw(ins[0]))])
            path = drafter.last_leaf(node.scope)
        else:
            assert row is not None
            path = node.path
            if row.layer.torch_home == "torchspec.nn" and row.layer.type_name() in INLINE:
                expr = Raw(_inline(row.layer.type_name(), ins, drafter, node.path, len(row.inputs[0])))
            else:
                ordered = [ins[k] for k in row.layer.torch_inputs(len(ins))]
                expr = Call(attrs[node.name], [(None, Raw(a)) for a in ordered])
        draft.forward.append((f"{target} = ", expr, drafter.comment(path)))
    result = names[len(nodes) - 1]
    last = drafter.rows[drafter.last_leaf(scope)].out
    if top:  # the model returns its main output, as the built model does
        while last is not None and not isinstance(last, tuple):
            result += "[0]"
            last = last.items[0]
    if last is not None and not isinstance(last, tuple):
        draft.returns = ""
    draft.forward.append(("return ", Raw(result), None))


def _learned(drafter: Any, node: Any) -> bool:
    row = drafter.rows.get(node.path)
    return row is not None and bool(row.layer.learned_tensor)


def _local(name: str, kind: str, used: set[str]) -> str:
    text = name if name.isidentifier() and not keyword.iskeyword(name) else f"{kind.lower()}_{name}"
    text = text if text.isidentifier() else f"value_{name}"
    while text in used:
        text += "_"
    used.add(text)
    return text


def _inline(kind: str, ins: list[str], drafter: Any, path: str, rank: int) -> str:
    """The torch expression of one of torchspec's parameterless layers, from the built module."""
    m: Any = drafter.model.get_submodule(path)
    a = ins[0]
    if kind == "Add":
        return " + ".join(ins)
    if kind == "Mul":
        return " * ".join(ins)
    if kind == "Concat":
        return f"torch.cat([{', '.join(ins)}], dim={m.dim})"
    if kind == "Mean":
        keep = ", keepdim=True" if m.keepdim else ""
        dims = m.dim[0] if len(m.dim) == 1 else tuple(m.dim)
        return f"{a}.mean(dim={literal(dims, path)}{keep})"
    if kind == "Permute":
        return f"{a}.permute({', '.join(map(str, m.dims))})"
    if kind == "Reshape":
        dims = ", ".join(map(str, m.shape))
        return f"{a}.reshape({dims})" if m.include_batch else f"{a}.reshape({a}.shape[0], {dims})"
    if kind == "Chunk":
        return f"{a}.chunk({m.chunks}, dim={m.dim})"
    if kind == "Split":
        return f"torch.split({a}, {literal(m.split_size_or_sections, path)}, dim={m.dim})"
    if kind == "Select":
        return f"{a}.select({m.dim}, {m.index})"
    assert kind == "ExpandBatch"
    return f"{a}.expand({', '.join([f'{ins[1]}.shape[0]'] + ['-1'] * (rank - 1))})"
