"""Pooling: MaxPool, AvgPool and their adaptive forms, in 1, 2 and 3 spatial dimensions.
Max pools with ``return_indices: true`` return torch's ``(output, indices)`` tuple.

Output length per spatial dimension (torch's pooling_output_shape):
  out = floor_or_ceil((L + 2p - d(k-1) - 1) / s) + 1, and with ceil_mode the last window must
  start inside the input or the left padding: if (out - 1)s >= L + p then out -= 1.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import (
    SPATIAL_LAYOUTS,
    Inferred,
    Layer,
    Shape,
    ShapeError,
    TupleOut,
    expand,
    fmt_size,
    register,
    spatial_name,
)
from torchspec.layers.fields import Bool, OptSizeList, PadSize, PosInt, Size


def with_indices(layer: Layer, shape: Shape) -> Inferred:
    """A max pool's result: with ``return_indices: true`` torch returns ``(output, indices)``, the
    indices (int64) shaped as the output; the next layer reads the output, ``from: pool.1`` the
    indices (MaxUnpool's second input)."""
    if getattr(layer, "return_indices", False):
        return Inferred(shape, outputs=TupleOut((shape, shape)))
    return Inferred(shape)


def _pad_at_most_half_kernel(padding: Any, info: ValidationInfo) -> Any:
    kernel = info.data.get("kernel_size")
    if kernel is None:
        return padding
    listed = kernel if isinstance(kernel, list) else padding if isinstance(padding, list) else [0]
    for p, k in zip(expand(padding, len(listed)), expand(kernel, len(listed))):
        if p > k // 2:
            raise PydanticCustomError(
                "pool_padding",
                "padding {padding} is more than half of kernel_size {kernel}; "
                "torch requires padding <= kernel_size // 2",
                {"padding": padding, "kernel": kernel},
            )
    return padding


def _pool_out(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = length + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


class _Pool(Layer):
    rank: ClassVar[int]
    # avg_pool3d (unlike every other pool) wants the unpadded input to hold a whole window
    window_within_input: ClassVar[bool] = False

    ceil_mode: Bool = False

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        rank = self.rank
        k = expand(self.kernel_size, rank)  # type: ignore[attr-defined]
        stride = self.stride  # type: ignore[attr-defined]
        s = k if stride is None else expand(stride, rank)
        p = expand(self.padding, rank)  # type: ignore[attr-defined]
        d = expand(getattr(self, "dilation", 1), rank)
        out = []
        for i, length in enumerate(shape[-rank:]):
            if self.window_within_input and length < k[i]:
                raise ShapeError(
                    f"{self.type_name()} needs every spatial dimension to be at least kernel_size "
                    f"{fmt_size(k)} before padding, but dimension {spatial_name(i, rank)} of {{incoming}} is "
                    f"{length}; use a smaller kernel_size or pool earlier",
                    field="kernel_size",
                )
            size = _pool_out(length, k[i], s[i], p[i], d[i], self.ceil_mode)
            if size < 1:
                raise ShapeError(
                    f"the output would be empty: dimension {spatial_name(i, rank)} of {{incoming}} "
                    f"is {length}, "
                    f"smaller than the window ({d[i] * (k[i] - 1) + 1} with padding {p[i]}); "
                    f"use a smaller kernel_size or pool earlier",
                    field="kernel_size",
                )
            out.append(size)
        return with_indices(self, (*shape[:-rank], *out))


def _max_pool_class(rank: int) -> type[_Pool]:
    class MaxPoolNd(_Pool):
        kernel_size: Size[rank]  # type: ignore[valid-type]
        stride: Size[rank] | None = None  # type: ignore[valid-type]
        padding: PadSize[rank] = 0  # type: ignore[valid-type]
        dilation: Size[rank] = 1  # type: ignore[valid-type]
        return_indices: Bool = False

        _pad = field_validator("padding")(_pad_at_most_half_kernel)

    MaxPoolNd.rank = rank
    MaxPoolNd.sample_ranks = (rank + 1,)
    MaxPoolNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return MaxPoolNd


def _avg_pool_class(rank: int) -> type[_Pool]:
    class AvgPoolNd(_Pool):
        kernel_size: Size[rank]  # type: ignore[valid-type]
        stride: Size[rank] | None = None  # type: ignore[valid-type]
        padding: PadSize[rank] = 0  # type: ignore[valid-type]
        count_include_pad: Bool = True

        _pad = field_validator("padding")(_pad_at_most_half_kernel)

    AvgPoolNd.rank = rank
    AvgPoolNd.sample_ranks = (rank + 1,)
    AvgPoolNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return AvgPoolNd


class _AvgPoolDivisor(Layer):
    divisor_override: PosInt | None = None


class _Adaptive(Layer):
    rank: ClassVar[int]

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        size = self.output_size  # type: ignore[attr-defined]
        wanted = [size] * self.rank if not isinstance(size, list) else size
        kept = [w if w is not None else length for w, length in zip(wanted, shape[-self.rank :])]
        return with_indices(self, (*shape[: -self.rank], *kept))


def _adaptive_class(rank: int, max_pool: bool) -> type[_Adaptive]:
    # None keeps an input size, but torch's 1-d adaptive pools take ints only
    output_type = OptSizeList[rank] if rank > 1 else Size[rank]

    class AdaptivePoolNd(_Adaptive):
        output_size: output_type  # type: ignore[valid-type]

    class AdaptiveMaxPoolNd(AdaptivePoolNd):
        return_indices: Bool = False

    cls = AdaptiveMaxPoolNd if max_pool else AdaptivePoolNd
    cls.rank = rank
    cls.sample_ranks = (rank + 1,)
    cls.sample_layout = SPATIAL_LAYOUTS[rank]
    return cls


@register
class MaxPool1d(_max_pool_class(1)):  # type: ignore[misc]
    type: Literal["MaxPool1d"] = "MaxPool1d"


@register
class MaxPool2d(_max_pool_class(2)):  # type: ignore[misc]
    type: Literal["MaxPool2d"] = "MaxPool2d"


@register
class MaxPool3d(_max_pool_class(3)):  # type: ignore[misc]
    type: Literal["MaxPool3d"] = "MaxPool3d"


@register
class AvgPool1d(_avg_pool_class(1)):  # type: ignore[misc]
    type: Literal["AvgPool1d"] = "AvgPool1d"


@register
class AvgPool2d(_avg_pool_class(2), _AvgPoolDivisor):  # type: ignore[misc]
    type: Literal["AvgPool2d"] = "AvgPool2d"


@register
class AvgPool3d(_avg_pool_class(3), _AvgPoolDivisor):  # type: ignore[misc]
    type: Literal["AvgPool3d"] = "AvgPool3d"
    window_within_input = True


@register
class AdaptiveMaxPool1d(_adaptive_class(1, max_pool=True)):  # type: ignore[misc]
    type: Literal["AdaptiveMaxPool1d"] = "AdaptiveMaxPool1d"


@register
class AdaptiveMaxPool2d(_adaptive_class(2, max_pool=True)):  # type: ignore[misc]
    type: Literal["AdaptiveMaxPool2d"] = "AdaptiveMaxPool2d"


@register
class AdaptiveMaxPool3d(_adaptive_class(3, max_pool=True)):  # type: ignore[misc]
    type: Literal["AdaptiveMaxPool3d"] = "AdaptiveMaxPool3d"


@register
class AdaptiveAvgPool1d(_adaptive_class(1, max_pool=False)):  # type: ignore[misc]
    type: Literal["AdaptiveAvgPool1d"] = "AdaptiveAvgPool1d"


@register
class AdaptiveAvgPool2d(_adaptive_class(2, max_pool=False)):  # type: ignore[misc]
    type: Literal["AdaptiveAvgPool2d"] = "AdaptiveAvgPool2d"


@register
class AdaptiveAvgPool3d(_adaptive_class(3, max_pool=False)):  # type: ignore[misc]
    type: Literal["AdaptiveAvgPool3d"] = "AdaptiveAvgPool3d"
