"""Pooling beyond MaxPool/AvgPool: LPPool1d/2d/3d, FractionalMaxPool2d/3d, MaxUnpool1d/2d/3d.

* LPPool: ``(sum of x^p over each window)^(1/p)``; windows as AvgPool's without padding.
* FractionalMaxPool: pseudo-random windows of ``kernel_size`` that cover the input in exactly
  ``output_size`` steps, or ``int(L * output_ratio)``; each window must fit: out + k - 1 <= L
  (torch's 3d kernel: < L).
* MaxUnpool: the inverse of a max pool, reading two inputs, the values and the pool's indices
  (``from: [x, pool.1]`` of a ``return_indices: true`` pool, the same shape):
  out = (L - 1) * stride - 2 * padding + kernel_size.

No parameters, no MACs.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import (
    SPATIAL_LAYOUTS,
    Inferred,
    Layer,
    Shape,
    ShapeError,
    checked_dim,
    expand,
    fmt_size,
    register,
    spatial_name,
)
from torchspec.layers.fields import Bool, PadSize, PosFloat, PosInt, Size
from torchspec.layers.pool import _Pool, with_indices

__all__ = [
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]


def _lp_pool_class(rank: int) -> type[_Pool]:
    # LPPool1d multiplies by its kernel_size: torch takes an int there, not a list
    kernel = PosInt if rank == 1 else Size[rank]

    class LPPoolNd(_Pool):
        positional: ClassVar[tuple[str, ...]] = ("norm_type", "kernel_size")
        padding: ClassVar[int] = 0  # LPPool has none: the rule of a pool without padding

        norm_type: PosFloat
        kernel_size: kernel  # type: ignore[valid-type]
        stride: Size[rank] | None = None  # type: ignore[valid-type]

    LPPoolNd.rank = rank
    LPPoolNd.sample_ranks = (rank + 1,)
    LPPoolNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return LPPoolNd


@register
class LPPool1d(_lp_pool_class(1)):  # type: ignore[misc]
    type: Literal["LPPool1d"] = "LPPool1d"


@register
class LPPool2d(_lp_pool_class(2)):  # type: ignore[misc]
    type: Literal["LPPool2d"] = "LPPool2d"


@register
class LPPool3d(_lp_pool_class(3)):  # type: ignore[misc]
    type: Literal["LPPool3d"] = "LPPool3d"
    window_within_input = True  # it runs avg_pool3d


Ratio = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class _Fractional(Layer):
    # exactly one of the two, in the JSON Schema too (editors; the truth sweep draws by it)
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["output_size"]}, {"required": ["output_ratio"]}]}
    )
    rank: ClassVar[int]
    strict_fit: ClassVar[bool] = False  # the 3d kernel wants out + k - 1 < L, the 2d one <= L
    positional: ClassVar[tuple[str, ...]] = ("kernel_size",)

    return_indices: Bool = False

    @model_validator(mode="after")
    def _one_target(self) -> _Fractional:
        if (self.output_size is None) == (self.output_ratio is None):  # type: ignore[attr-defined]
            raise PydanticCustomError(
                "fractional_target",
                "{type} needs exactly one of output_size and output_ratio",
                {"type": self.type_name()},
            )
        return self

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        rank = self.rank
        k = expand(self.kernel_size, rank)  # type: ignore[attr-defined]
        spatial = shape[-rank:]
        if self.output_size is not None:  # type: ignore[attr-defined]
            out, field = list(expand(self.output_size, rank)), "output_size"  # type: ignore[attr-defined]
        else:  # torch truncates L * ratio
            ratio = self.output_ratio  # type: ignore[attr-defined]
            ratios = ratio if isinstance(ratio, list) else [ratio] * rank
            out, field = [int(length * r) for length, r in zip(spatial, ratios)], "output_ratio"
        for i, (length, size) in enumerate(zip(spatial, out)):
            if size < 1 or size + k[i] - 1 + self.strict_fit > length:
                within = "<" if self.strict_fit else "<="
                raise ShapeError(
                    f"dimension {spatial_name(i, rank)} of {{incoming}} is {length}: {size} windows of "
                    f"kernel_size {fmt_size(k)} need output + kernel_size - 1 {within} {length} and at "
                    f"least 1 window; use a smaller kernel_size or {field}",
                    field=field,
                )
        return with_indices(self, (*shape[:-rank], *out))


def _fractional_class(rank: int) -> type[_Fractional]:
    class FractionalMaxPoolNd(_Fractional):
        kernel_size: Size[rank]  # type: ignore[valid-type]
        output_size: Size[rank] | None = None  # type: ignore[valid-type]
        output_ratio: Ratio | Annotated[list[Ratio], Field(min_length=rank, max_length=rank)] | None = None

    FractionalMaxPoolNd.rank = rank
    FractionalMaxPoolNd.sample_ranks = (rank + 1,)
    FractionalMaxPoolNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return FractionalMaxPoolNd


@register
class FractionalMaxPool2d(_fractional_class(2)):  # type: ignore[misc]
    type: Literal["FractionalMaxPool2d"] = "FractionalMaxPool2d"


@register
class FractionalMaxPool3d(_fractional_class(3)):  # type: ignore[misc]
    type: Literal["FractionalMaxPool3d"] = "FractionalMaxPool3d"
    strict_fit = True


class _Unpool(Layer):
    rank: ClassVar[int]
    positional: ClassVar[tuple[str, ...]] = ("kernel_size",)
    arity = (2, 2)
    index_inputs = (1,)

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        values, indices = shapes
        self.check_rank(values)
        if indices != values:
            raise ShapeError(
                "the indices {in1} must have the shape of the values {in0}: read them from the "
                "max pool that produced the values (from: [x, pool.1], return_indices: true)",
                field="from",
            )
        rank = self.rank
        k = expand(self.kernel_size, rank)  # type: ignore[attr-defined]
        stride: Any = self.stride  # type: ignore[attr-defined]
        s = k if stride is None else expand(stride, rank)
        p = expand(self.padding, rank)  # type: ignore[attr-defined]
        out = []
        for i, length in enumerate(values[-rank:]):
            size = (length - 1) * s[i] - 2 * p[i] + k[i]
            if size < 1:
                raise ShapeError(
                    f"the output would be empty: dimension {spatial_name(i, rank)} of {{in0}} "
                    f"unpools to {size}; use a smaller padding",
                    field="padding",
                )
            out.append(checked_dim(size, f"dimension {spatial_name(i, rank)}"))
        return Inferred((*values[:-rank], *out))


def _unpool_class(rank: int) -> type[_Unpool]:
    class MaxUnpoolNd(_Unpool):
        kernel_size: Size[rank]  # type: ignore[valid-type]
        stride: Size[rank] | None = None  # type: ignore[valid-type]
        padding: PadSize[rank] = 0  # type: ignore[valid-type]

    MaxUnpoolNd.rank = rank
    MaxUnpoolNd.sample_ranks = (rank + 1,)
    MaxUnpoolNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return MaxUnpoolNd


@register
class MaxUnpool1d(_unpool_class(1)):  # type: ignore[misc]
    type: Literal["MaxUnpool1d"] = "MaxUnpool1d"


@register
class MaxUnpool2d(_unpool_class(2)):  # type: ignore[misc]
    type: Literal["MaxUnpool2d"] = "MaxUnpool2d"


@register
class MaxUnpool3d(_unpool_class(3)):  # type: ignore[misc]
    type: Literal["MaxUnpool3d"] = "MaxUnpool3d"
