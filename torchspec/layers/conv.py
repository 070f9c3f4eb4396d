"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d.

Output length per spatial dimension, as torch computes it:
  Conv:           floor((L + 2p - d(k-1) - 1) / s) + 1
  ConvTranspose:  (L - 1)s - 2p + d(k-1) + output_padding + 1
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
    checked_dim,
    expand,
    fmt_size,
    prod,
    register,
    spatial_name,
)
from torchspec.layers.fields import Bool, Padding, PaddingMode, PadSize, PosInt, Size


def _check_groups(groups: int, info: ValidationInfo) -> int:
    for field in ("in_channels", "out_channels"):
        channels = info.data.get(field)
        if channels is not None and channels % groups:
            raise PydanticCustomError(
                "groups",
                "groups={groups} must divide {field}={channels}; pick a divisor of both channel counts",
                {"groups": groups, "field": field, "channels": channels},
            )
    return groups


class _Conv(Layer):
    """Shared rule of the convolution family; ``rank`` is the number of spatial dimensions."""

    rank: ClassVar[int]
    transposed: ClassVar[bool] = False
    positional = ("in_channels", "out_channels")

    in_channels: PosInt | None = None
    out_channels: PosInt
    groups: PosInt = 1
    bias: Bool = True
    padding_mode: PaddingMode = "zeros"

    _groups_divide = field_validator("groups")(_check_groups)

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        n, c, *spatial = shape
        in_ch = self.check_given("in_channels", self.in_channels, c, "channels")
        if in_ch % self.groups:
            raise ShapeError(
                f"groups={self.groups} does not divide the {in_ch} incoming channels of {{incoming}}",
                field="groups",
            )
        k = expand(self.kernel_size, self.rank)  # type: ignore[attr-defined]
        out_spatial = self.out_spatial(spatial, k)
        weight = self.out_channels * (in_ch // self.groups) * prod(k)
        params = weight + (self.out_channels if self.bias else 0)
        # torch's weight: (out, in/groups, *k) for a convolution, (in, out/groups, *k) transposed
        if self.transposed:
            state: dict[str, Shape] = {"weight": (in_ch, self.out_channels // self.groups, *k)}
        else:
            state = {"weight": (self.out_channels, in_ch // self.groups, *k)}
        if self.bias:
            state["bias"] = (self.out_channels,)
        # One MAC per weight element per output (conv) or input (transposed) position.
        positions = prod(spatial) if self.transposed else prod(out_spatial)
        macs = n * positions * weight
        return Inferred(
            (n, self.out_channels, *out_spatial),
            params=params,
            macs=macs,
            args={"in_channels": in_ch},
            state=state,
        )

    def out_spatial(self, spatial: list[int], k: tuple[int, ...]) -> list[int]:
        raise NotImplementedError


def _conv_class(rank: int) -> type[_Conv]:
    class ConvNd(_Conv):
        kernel_size: Size[rank]  # type: ignore[valid-type]
        stride: Size[rank] = 1  # type: ignore[valid-type]
        padding: Padding[rank] = 0  # type: ignore[valid-type]
        dilation: Size[rank] = 1  # type: ignore[valid-type]

        @field_validator("padding")
        @classmethod
        def _same_needs_stride_1(cls, padding: Any, info: ValidationInfo) -> Any:
            stride = info.data.get("stride", 1)
            if padding == "same" and any(s != 1 for s in expand(stride, rank)):
                raise PydanticCustomError(
                    "padding_same",
                    "padding='same' is only supported with stride 1 (stride is {stride}); "
                    "use stride 1 or an explicit padding",
                    {"stride": stride},
                )
            return padding

        def out_spatial(self, spatial: list[int], k: tuple[int, ...]) -> list[int]:
            s, d = expand(self.stride, rank), expand(self.dilation, rank)
            if self.padding == "same":
                # torch pads d(k-1) in total, the larger half on the right
                pads: tuple[int, ...] = tuple(di * (ki - 1) - di * (ki - 1) // 2 for di, ki in zip(d, k))
            else:
                pads = expand(0 if self.padding == "valid" else self.padding, rank)
            out = []
            for i, length in enumerate(spatial):
                if self.padding_mode in ("reflect", "circular") and pads[i] > 0:
                    limit = length - 1 if self.padding_mode == "reflect" else length
                    if pads[i] > limit:
                        raise ShapeError(
                            f"padding {pads[i]} with padding_mode={self.padding_mode!r} needs a "
                            f"spatial size of at least {pads[i] + length - limit}, but the incoming "
                            f"shape is {{incoming}}",
                            field="padding",
                        )
                if self.padding == "same":
                    out.append(length)
                    continue
                effective = d[i] * (k[i] - 1) + 1
                if length + 2 * pads[i] < effective:
                    raise ShapeError(
                        f"kernel_size {fmt_size(k)} with dilation {fmt_size(d)} spans {effective} but "
                        f"dimension {spatial_name(i, rank)} of {{incoming}} is only {length + 2 * pads[i]} "
                        f"after padding; use a smaller kernel or more padding",
                        field="kernel_size",
                    )
                out.append(checked_dim((length + 2 * pads[i] - effective) // s[i] + 1, "output"))
            return out

    ConvNd.rank = rank
    ConvNd.sample_ranks = (rank + 1,)
    ConvNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return ConvNd


def _conv_transpose_class(rank: int) -> type[_Conv]:
    class ConvTransposeNd(_Conv):
        transposed = True
        kernel_size: Size[rank]  # type: ignore[valid-type]
        stride: Size[rank] = 1  # type: ignore[valid-type]
        padding: PadSize[rank] = 0  # type: ignore[valid-type]
        # dilation before output_padding, which is checked against it
        dilation: Size[rank] = 1  # type: ignore[valid-type]
        output_padding: PadSize[rank] = 0  # type: ignore[valid-type]
        padding_mode: Literal["zeros"] = "zeros"

        @field_validator("output_padding")
        @classmethod
        def _below_stride_or_dilation(cls, value: Any, info: ValidationInfo) -> Any:
            if "stride" not in info.data or "dilation" not in info.data:
                return value  # reported already
            s, d = expand(info.data["stride"], rank), expand(info.data["dilation"], rank)
            if any(o >= si and o >= di for o, si, di in zip(expand(value, rank), s, d)):
                raise PydanticCustomError(
                    "output_padding",
                    "output_padding {op} must be smaller than stride {s} or dilation {d} in every "
                    "dimension; lower output_padding or raise the stride",
                    {"op": value, "s": info.data["stride"], "d": info.data["dilation"]},
                )
            return value

        def out_spatial(self, spatial: list[int], k: tuple[int, ...]) -> list[int]:
            s, d = expand(self.stride, rank), expand(self.dilation, rank)
            p, op = expand(self.padding, rank), expand(self.output_padding, rank)
            out = []
            for i, length in enumerate(spatial):
                size = (length - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
                if size < 1:
                    raise ShapeError(
                        f"output size of dimension {spatial_name(i, rank)} would be {size} for {{incoming}}; "
                        f"reduce padding",
                        field="padding",
                    )
                out.append(checked_dim(size, "output"))
            return out

    ConvTransposeNd.rank = rank
    ConvTransposeNd.sample_ranks = (rank + 1,)
    ConvTransposeNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return ConvTransposeNd


@register
class Conv1d(_conv_class(1)):  # type: ignore[misc]
    type: Literal["Conv1d"] = "Conv1d"


@register
class Conv2d(_conv_class(2)):  # type: ignore[misc]
    type: Literal["Conv2d"] = "Conv2d"


@register
class Conv3d(_conv_class(3)):  # type: ignore[misc]
    type: Literal["Conv3d"] = "Conv3d"


@register
class ConvTranspose1d(_conv_transpose_class(1)):  # type: ignore[misc]
    type: Literal["ConvTranspose1d"] = "ConvTranspose1d"


@register
class ConvTranspose2d(_conv_transpose_class(2)):  # type: ignore[misc]
    type: Literal["ConvTranspose2d"] = "ConvTranspose2d"


@register
class ConvTranspose3d(_conv_transpose_class(3)):  # type: ignore[misc]
    type: Literal["ConvTranspose3d"] = "ConvTranspose3d"
