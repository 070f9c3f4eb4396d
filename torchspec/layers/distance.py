"""Distances between two inputs: CosineSimilarity, PairwiseDistance (no parameters, 0 MACs).

Both broadcast their inputs as torch does (sizes aligned from the right, equal or 1) and reduce one
dimension of the broadcast shape.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from torchspec.layers.base import Inferred, Shape, ShapeError, fmt_shape, register
from torchspec.layers.fields import Bool, Dim, Float, PosFloat
from torchspec.layers.merge import _Broadcast

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class _TwoInputs(_Broadcast):
    """Add's broadcasting rule (``infer_many`` of the base gives the broadcast shape), then a
    reduction; these are torch.nn's own classes, with two inputs (x1, x2)."""

    arity = (2, 2)
    torch_home: ClassVar[str] = "torch.nn"

    def broadcast(self, shapes: list[Shape]) -> Shape:
        return super().infer_many(shapes).shape


@register
class CosineSimilarity(_TwoInputs):
    """Cosine similarity along ``dim`` of the broadcast inputs; the output drops ``dim``."""

    type: Literal["CosineSimilarity"] = "CosineSimilarity"

    dim: Dim = 1
    eps: PosFloat = 1e-8

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        shape = self.broadcast(shapes)
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
        shape = self.broadcast(shapes)
        return Inferred(shape[:-1] + ((1,) if self.keepdim else ()))
