"""Merge and tensor layers (torch.nn has none): Add, Mul, Concat, Mean, Permute, Reshape, Chunk,
Split, Select. Each is torchspec's own module in :mod:`torchspec.nn` (``torch_home``).

Dimensions count the batch dimension, as torch's do (``dim: 1`` is the channels of (N, C, H, W));
negative values count from the end. ``Reshape``'s ``shape`` is per sample: the batch is kept.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, TupleOut, checked_dim, prod, register
from torchspec.layers.fields import INT64_MAX, Bool, Dim, PosInt
from torchspec.layers.reshape import normalize_dim

__all__ = ["Add", "Chunk", "Concat", "Mean", "Mul", "Permute", "Reshape", "Select", "Split"]

DimList = Annotated[list[Dim], Field(min_length=1, max_length=8)]


class _Own(Layer):
    torch_home: ClassVar[str] = "torchspec.nn"


class _Broadcast(_Own):
    """Element-wise merges of two or more inputs with torch's broadcasting rules."""

    arity: ClassVar[tuple[int, int | None]] = (2, None)
    batch_rule: ClassVar[str] = "broadcast"  # a learned [1, T, E] or [C, 1, 1] spreads over the batch

    def infer(self, shape: Shape) -> Inferred:
        return self.infer_many([shape])

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        out = shapes[0]
        for i, shape in enumerate(shapes[1:], 1):
            rank = max(len(out), len(shape))
            a, b = (1,) * (rank - len(out)) + out, (1,) * (rank - len(shape)) + shape
            merged = []
            for k, (x, y) in enumerate(zip(a, b)):
                if x != y and 1 not in (x, y):
                    first = "{in0}" if i == 1 else "the inputs before it, broadcast to " + str(list(out))
                    raise ShapeError(
                        f"cannot broadcast {first} with {{in{i}}}: dimension {k} is {x} "
                        f"vs {y} (sizes must be equal or 1)",
                        field="from",
                        hints=[
                            "make the shapes agree, e.g. with a 1x1 convolution or a pooling "
                            "layer on one branch"
                        ],
                    )
                merged.append(max(x, y))
            out = tuple(merged)
        return Inferred(out)


@register
class Add(_Broadcast):
    """The element-wise sum of its inputs (a residual connection): ``x + y + ...``."""

    type: Literal["Add"] = "Add"


@register
class Mul(_Broadcast):
    """The element-wise product of its inputs (gating, squeeze-excitation): ``x * y * ...``."""

    type: Literal["Mul"] = "Mul"


@register
class Concat(_Own):
    """``torch.cat(inputs, dim)``: every dimension but ``dim`` must agree."""

    type: Literal["Concat"] = "Concat"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    dim: Dim = 1

    def infer(self, shape: Shape) -> Inferred:
        return self.infer_many([shape])

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        first = shapes[0]
        dim = normalize_dim(self.dim, len(first), incoming="{in0}")
        total = 0
        for i, shape in enumerate(shapes):
            if len(shape) != len(first):
                raise ShapeError(
                    f"cannot concatenate {{in0}} with {{in{i}}}: ranks {len(first)} and {len(shape)} differ",
                    field="from",
                    hints=["Flatten, Reshape or Unflatten one input so the ranks agree"],
                )
            for k, (x, y) in enumerate(zip(first, shape)):
                if k != dim and x != y:
                    raise ShapeError(
                        f"cannot concatenate {{in0}} with {{in{i}}} on dim {self.dim}: dimension "
                        f"{k} is {x} vs {y}; every dimension but dim must agree",
                        field="from",
                        hints=[
                            "resize one branch (pooling, Upsample, padding) or concatenate on another dim"
                        ],
                    )
            total += shape[dim]
        return Inferred((*first[:dim], checked_dim(total, "the concatenated dimension"), *first[dim + 1 :]))


@register
class Mean(_Own):
    """``x.mean(dim, keepdim)`` over one or several dimensions."""

    type: Literal["Mean"] = "Mean"
    aliases_input: ClassVar[bool] = False
    dim: Dim | DimList
    keepdim: Bool = False

    def infer(self, shape: Shape) -> Inferred:
        dims = [self.dim] if isinstance(self.dim, int) else list(self.dim)
        norm = [normalize_dim(d, len(shape)) for d in dims]
        if len(set(norm)) != len(norm):
            raise ShapeError(f"dim {self.dim} names a dimension twice for {{incoming}}", field="dim")
        if self.keepdim:
            return Inferred(tuple(1 if k in norm else d for k, d in enumerate(shape)))
        return Inferred(tuple(d for k, d in enumerate(shape) if k not in norm))


@register
class Permute(_Own):
    """``x.permute(dims)``: ``dims`` orders every dimension, the batch (0) included."""

    type: Literal["Permute"] = "Permute"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("dims",)
    dims: DimList

    def infer(self, shape: Shape) -> Inferred:
        rank = len(shape)
        norm = [normalize_dim(d, rank, "dims") for d in self.dims]
        if len(self.dims) != rank or sorted(norm) != list(range(rank)):
            raise ShapeError(
                f"dims {self.dims} is not a permutation of the {rank} dimensions of {{incoming}}; "
                f"name each of 0..{rank - 1} once (the batch is dimension 0)",
                field="dims",
            )
        return Inferred(tuple(shape[d] for d in norm))


ShapeItem = Annotated[int, Field(strict=True, ge=-1, le=INT64_MAX)]


@register
class Reshape(_Own):
    """``x.reshape(N, *shape)``: ``shape`` is per sample (the batch is kept); one entry may be -1.

    ``include_batch: true``: ``shape`` is the whole tensor's, batch included (``x.reshape(*shape)``):
    ``[-1, 1, 24, 24]`` folds a clip's frames into the batch for a per-frame 2D CNN, and
    ``[-1, 8, 32]`` unfolds them again; the model's output must have the batch it was given."""

    type: Literal["Reshape"] = "Reshape"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("shape",)
    shape: Annotated[list[ShapeItem], Field(min_length=1, max_length=7)]
    include_batch: Bool = False

    @field_validator("shape")
    @classmethod
    def _one_unknown(cls, value: list[int]) -> list[int]:
        if value.count(-1) > 1 or 0 in value:
            raise PydanticCustomError(
                "reshape_shape",
                "shape takes positive sizes and at most one -1 (inferred), found {found}",
                {"found": value},
            )
        return value

    def infer(self, shape: Shape) -> Inferred:
        whole = self.include_batch
        have = prod(shape if whole else shape[1:])
        per = "" if whole else " per sample"
        sizes = list(self.shape)
        known = prod([s for s in sizes if s != -1])
        if -1 in sizes:
            if have % known:
                raise ShapeError(
                    f"shape {self.shape} cannot hold the {have} elements{per} of {{incoming}}: "
                    f"{have} is not a multiple of {known}",
                    field="shape",
                )
            sizes[sizes.index(-1)] = have // known
        elif known != have:
            raise ShapeError(
                f"shape {self.shape} holds {known} elements{per} but {{incoming}} has {have}; "
                "the products must match (one entry may be -1)",
                field="shape",
            )
        return Inferred(tuple(sizes) if whole else (shape[0], *sizes))


def _pieces(sizes: list[int], shape: Shape, dim: int) -> Inferred:
    items = tuple((*shape[:dim], s, *shape[dim + 1 :]) for s in sizes)
    return Inferred(items[0], outputs=TupleOut(items))


@register
class Chunk(_Own):
    """``x.chunk(chunks, dim)``: a tuple of pieces of ceil(size / chunks) (torch may return fewer).

    The next layer reads piece 0; ``from: name.1`` takes another.
    """

    type: Literal["Chunk"] = "Chunk"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("chunks",)
    chunks: PosInt
    dim: Dim = 1

    def infer(self, shape: Shape) -> Inferred:
        dim = normalize_dim(self.dim, len(shape))
        size = shape[dim]
        step = -(-size // self.chunks)
        return _pieces([min(step, size - start) for start in range(0, size, step)], shape, dim)


@register
class Split(_Own):
    """``torch.split(x, split_size_or_sections, dim)``: pieces of one size (the last may be
    smaller) or of the listed sizes, which must add up to the dimension."""

    type: Literal["Split"] = "Split"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("split_size_or_sections",)
    split_size_or_sections: PosInt | Annotated[list[PosInt], Field(min_length=1, max_length=64)]
    dim: Dim = 1

    def infer(self, shape: Shape) -> Inferred:
        dim = normalize_dim(self.dim, len(shape))
        size, split = shape[dim], self.split_size_or_sections
        if isinstance(split, int):
            return _pieces([min(split, size - start) for start in range(0, size, split)], shape, dim)
        if sum(split) != size:
            raise ShapeError(
                f"split_size_or_sections {split} adds up to {sum(split)} but dimension {dim} of "
                f"{{incoming}} is {size}",
                field="split_size_or_sections",
            )
        return _pieces(list(split), shape, dim)


@register
class Select(_Own):
    """``x.select(dim, index)``: one slice of a dimension, which is removed (e.g. an RNN's last
    time step: ``{type: Select, dim: 1, index: -1}``)."""

    type: Literal["Select"] = "Select"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("dim", "index")
    dim: Dim
    index: Annotated[int, Field(strict=True, ge=-INT64_MAX, le=INT64_MAX)]

    def infer(self, shape: Shape) -> Inferred:
        dim = normalize_dim(self.dim, len(shape))
        if not -shape[dim] <= self.index < shape[dim]:
            raise ShapeError(
                f"index {self.index} is out of range for dimension {dim} of {{incoming}} (size "
                f"{shape[dim]}); use a value in [{-shape[dim]}, {shape[dim] - 1}]",
                field="index",
            )
        return Inferred((*shape[:dim], *shape[dim + 1 :]))
