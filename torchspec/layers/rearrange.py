"""Layers that move values between channels and space: PixelShuffle, PixelUnshuffle, Unfold, Fold.

* PixelShuffle(r): ``(*, C * r^2, H, W)`` -> ``(*, C, H * r, W * r)`` (sub-pixel convolution,
  ESPCN); PixelUnshuffle(r) is its inverse and needs H and W divisible by r.
* Unfold: ``(N, C, H, W)`` -> ``(N, C * kh * kw, L)``, one column per sliding block, where L is the
  product over H and W of ``floor((size + 2p - d(k - 1) - 1) / s) + 1``.
* Fold: the inverse, ``(N, C * kh * kw, L)`` -> ``(N, C, *output_size)``; L must be the number of
  blocks that fit in ``output_size``.

No parameters, no MACs.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, checked_dim, expand, register
from torchspec.layers.fields import PadSize, PosInt, Size

__all__ = ["Fold", "PixelShuffle", "PixelUnshuffle", "Unfold"]


@register
class PixelShuffle(Layer):
    type: Literal["PixelShuffle"] = "PixelShuffle"
    positional: ClassVar[tuple[str, ...]] = ("upscale_factor",)
    sample_ranks = (3, 4)
    sample_layout = "(*, C, H, W)"
    upscale_factor: PosInt

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        *lead, c, h, w = shape
        r = self.upscale_factor
        if c % (r * r):
            raise ShapeError(
                f"upscale_factor {r} needs the channels to be a multiple of {r * r} (r^2), but "
                f"{{incoming}} has {c}; give the convolution before it out_channels: C * {r * r}",
                field="upscale_factor",
            )
        out = (c // (r * r), checked_dim(h * r, "H"), checked_dim(w * r, "W"))
        return Inferred((*lead, *out))


@register
class PixelUnshuffle(Layer):
    type: Literal["PixelUnshuffle"] = "PixelUnshuffle"
    positional: ClassVar[tuple[str, ...]] = ("downscale_factor",)
    sample_ranks = (3, 4)
    sample_layout = "(*, C, H, W)"
    downscale_factor: PosInt

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        *lead, c, h, w = shape
        r = self.downscale_factor
        if h % r or w % r:
            raise ShapeError(
                f"downscale_factor {r} must divide H and W, but {{incoming}} is {h}x{w}",
                field="downscale_factor",
            )
        return Inferred((*lead, checked_dim(c * r * r, "C"), h // r, w // r))


class _Blocks(Layer):
    """The sliding-block arithmetic shared by Unfold and Fold (2 spatial dimensions)."""

    model_config = ConfigDict(protected_namespaces=())
    kernel_size: Size[2]  # type: ignore[valid-type]
    dilation: Size[2] = 1  # type: ignore[valid-type]
    padding: PadSize[2] = 0  # type: ignore[valid-type]
    stride: Size[2] = 1  # type: ignore[valid-type]

    def blocks(self, spatial: tuple[int, ...], where: str) -> tuple[int, int]:
        """Blocks along H and W of an (H, W) area; an area without a whole block is an error."""
        k, d = expand(self.kernel_size, 2), expand(self.dilation, 2)
        p, s = expand(self.padding, 2), expand(self.stride, 2)
        counts = [(spatial[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
        if min(counts) < 1:
            raise ShapeError(
                f"{where} {list(spatial)} holds no whole block of kernel_size "
                f"{list(k)} (dilation {list(d)}, padding {list(p)}); use a smaller kernel_size",
                field="kernel_size",
            )
        return counts[0], counts[1]


@register
class Unfold(_Blocks):
    type: Literal["Unfold"] = "Unfold"
    positional: ClassVar[tuple[str, ...]] = ("kernel_size",)
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        n, c, h, w = shape
        bh, bw = self.blocks((h, w), "the input's H x W")
        per = c * expand(self.kernel_size, 2)[0] * expand(self.kernel_size, 2)[1]
        return Inferred((n, checked_dim(per, "the block size"), bh * bw))


@register
class Fold(_Blocks):
    type: Literal["Fold"] = "Fold"
    positional: ClassVar[tuple[str, ...]] = ("output_size", "kernel_size")
    sample_ranks = (2,)
    sample_layout = "(C * kh * kw, L)"
    output_size: Size[2]  # type: ignore[valid-type]

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        n, ck, length = shape
        kh, kw = expand(self.kernel_size, 2)
        if ck % (kh * kw):
            raise ShapeError(
                f"dimension 1 of {{incoming}} ({ck}) must be C * {kh * kw}, a multiple of the "
                f"kernel's {kh}x{kw} values",
                field="kernel_size",
            )
        out = expand(self.output_size, 2)
        bh, bw = self.blocks(out, "output_size")
        if bh * bw != length:
            raise ShapeError(
                f"output_size {list(out)} holds {bh} x {bw} = {bh * bw} blocks, but {{incoming}} has "
                f"L = {length} columns; they must agree",
                field="output_size",
            )
        return Inferred((n, ck // (kh * kw), *out))
