"""The dtype rule of the shape walk: which layers may read token ids (see :mod:`torchspec.inputs`).

Every value flowing through the walk is float32 or int64 (token ids, from an ``input: {dtype:
int64}``). A layer's ``reads`` says what it computes on:

* ``float`` (most layers): an int64 input is an error with the fix (an Embedding first);
* ``index`` (Embedding, EmbeddingBag): a float32 input is an error; the declared id range
  ``[low, high)`` must lie within ``[0, index_bound)`` (``num_embeddings``); the output is float32;
* ``any`` (views and tensor ops: Identity, Flatten, Permute, Reshape, Select, Chunk, Concat ...):
  the output keeps the dtype (int64 only when every input is).

torch itself is looser in places (``ReLU`` runs on int64, ``Tanh`` returns floats): the rule is
deliberately uniform, so a token-id tensor never reaches a float layer by accident.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from torchspec.diagnose import node_at, where
from torchspec.errors import SpecError
from torchspec.inputs import FLOAT, INDEX
from torchspec.layers import Inferred, Layer, Out, first_tensor, fmt_shape
from torchspec.source import Document, Path

__all__ = ["dtype_flow"]


class Flowing(Protocol):
    """What the walk knows about one input (``torchspec.infer._Value``)."""

    out: Out
    came_from: str
    dtype: str
    range: tuple[int, int | None] | None


FLOAT_HINTS = [
    "token ids go through an Embedding first: {type: Embedding, num_embeddings: VOCAB, embedding_dim: D}",
    "if the values are features, declare the input float: input: {shape: [...], dtype: float32}",
]


def dtype_flow(
    doc: Document, layer: Layer, data_path: Path, ins: list[Any], inferred: Inferred, bounds: list[int]
) -> str:
    """The output's dtype for ``layer`` reading ``ins`` (:class:`Flowing`), or a located SpecError.

    An index layer reading ids of undeclared ``high`` appends its bound to ``bounds`` (bench and
    the meta check draw ids below the smallest)."""
    what = f"{layer.type_name()} ({where(data_path)})"
    if layer.reads == "any":
        return INDEX if all(v.dtype == INDEX for v in ins) else FLOAT
    if layer.reads == "float":
        for value in ins:
            if value.dtype == INDEX:
                message = f"{what}: computes on floats, but reads int64 token ids {_shown(value)}"
                raise _error(doc, data_path, message, FLOAT_HINTS)
        return FLOAT
    value = ins[0]  # "index": integer ids
    if value.dtype != INDEX:
        message = f"{what}: reads integer ids (int64), but its input {_shown(value)} is float32"
        hint = "declare the spec's input as token ids: input: {shape: [T], dtype: int64, high: VOCAB}"
        raise _error(doc, data_path, message, [hint])
    bound = layer.index_bound(inferred)
    if bound is None or value.range is None:
        return FLOAT
    low, high = value.range
    if high is None:
        bounds.append(bound)
    if low < 0 or (high is not None and high > bound):
        ids = f"from {low}" if high is None else f"{low} .. {high - 1}"
        rows = f"{bound} rows (ids 0 .. {bound - 1})"
        message = f"{what}: has {rows}, but its input {_shown(value)} declares ids {ids}"
        hints = ["ids must be >= 0: set the input's low: 0"] if low < 0 else [f"set num_embeddings: {high}"]
        if high is not None:
            hints.append(f"or declare the input's range to match: high: {bound}")
        node = node_at(doc.data, data_path)
        point = isinstance(node, dict) and "num_embeddings" in node and low >= 0
        raise _error(doc, (*data_path, "num_embeddings") if point else data_path, message, hints)
    return FLOAT


def _shown(value: Flowing) -> str:
    return f"{fmt_shape(first_tensor(value.out))} ({value.came_from})"


def _error(doc: Document, path: Path, message: str, hints: list[str]) -> SpecError:
    problem = doc.problem(path, message, hints)
    if not (doc.text or doc.value_pos):  # a spec given as a mapping: no file positions
        problem = replace(problem, line=0, col=0, source_line=None)
    return SpecError([problem])
