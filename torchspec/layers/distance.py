"""Distances between two inputs: CosineSimilarity, PairwiseDistance (no parameters, 0 MACs).

Both broadcast their inputs as torch does (sizes aligned from the right, equal or 1) and reduce one
dimension of the broadcast shape.
"""

from __future__ import annotations

from typing import Literal

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, fmt_shape, register
from torchspec.layers.fields import Bool, Dim, Float, PosFloat

__all__ = ["CosineSimilarity", "PairwiseDistance", "broadcast"]


def broadcast(first: Shape, second: Shape) -> Shape:
    """torch's broadcasting of two shapes; a ShapeError naming both where a size disagrees."""
    rank = max(len(first), len(second))
    a = (1,) * (rank - len(first)) + first
    b = (1,) * (rank - len(second)) + second
    out = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y and 1 not in (x, y):
            raise ShapeError(
                f"the inputs {fmt_shape(first)} and {fmt_shape(second)} do not broadcast: "
                f"{x} against {y} in dimension {i - rank} (sizes must be equal or 1)"
            )
        out.append(y if x == 1 else x)
    return tuple(out)


class _TwoInputs(Layer):
    arity = (2, 2)

    def infer(self, shape: Shape) -> Inferred:
        raise ShapeError(
            "takes two inputs, (x1, x2), but gets one",
            hints=["name both with from: [first_layer, second_layer]"],
        )


@register
class CosineSimilarity(_TwoInputs):
    """Cosine similarity along ``dim`` of the broadcast inputs; the output drops ``dim``."""

    type: Literal["CosineSimilarity"] = "CosineSimilarity"

    dim: Dim = 1
    eps: PosFloat = 1e-8

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        shape = broadcast(*shapes)
        rank = len(shape)
        if not -rank <= self.dim < rank:
            raise ShapeError(
                f"dim {self.dim} is out of range for the broadcast shape {fmt_shape(shape)} "
                f"(rank {rank} with the batch); use a dim in [{-rank}, {rank - 1}]",
                field="dim",
            )
        dim = self.dim % rank
        return Inferred(shape[:dim] + shape[dim + 1 :])


@register
class PairwiseDistance(_TwoInputs):
    """The p-norm of ``x1 - x2 + eps`` over the last dimension (kept as 1 with keepdim)."""

    type: Literal["PairwiseDistance"] = "PairwiseDistance"

    p: Float = 2.0
    eps: PosFloat = 1e-6
    keepdim: Bool = False

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        shape = broadcast(*shapes)
        return Inferred(shape[:-1] + ((1,) if self.keepdim else ()))
