"""Declared transforms: torchvision.transforms.v2 class names and keyword arguments, as pydantic models.

Torch-free (``torchspec check`` validates them). Each transform is declared once here, with
torchvision's own argument names and defaults; :mod:`torchspec.training.transforms` maps the same
names to the torchvision classes through an explicit table (nothing is imported by string). A
bare name stands for ``{type: Name}``, as for layers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["TRANSFORMS", "Transform", "TransformList", "fixed_size", "resizes"]

PosInt = Annotated[int, Field(strict=True, ge=1, le=65536)]
NonNegInt = Annotated[int, Field(strict=True, ge=0, le=65536)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# torchvision's sizes: an int (a square for crops, the short side for Resize), or [h, w]
SizeArg = Union[PosInt, Annotated[list[PosInt], Field(min_length=1, max_length=2)]]  # noqa: UP007
Interpolation = Literal["nearest", "nearest-exact", "bilinear", "bicubic"]
Range = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2)]


class _Transform(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Resize(_Transform):
    """An int resizes the short side to it (keeping the aspect ratio); [h, w] resizes to exactly that."""

    type: Literal["Resize"]
    size: SizeArg
    interpolation: Interpolation = "bilinear"
    max_size: PosInt | None = None
    antialias: bool = True


class CenterCrop(_Transform):
    type: Literal["CenterCrop"]
    size: SizeArg


class RandomCrop(_Transform):
    type: Literal["RandomCrop"]
    size: SizeArg
    padding: Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=1, max_length=4)], None] = None  # noqa: UP007
    pad_if_needed: bool = False
    fill: float = 0
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant"


class RandomResizedCrop(_Transform):
    type: Literal["RandomResizedCrop"]
    size: SizeArg
    scale: Range = [0.08, 1.0]
    ratio: Range = [3 / 4, 4 / 3]
    interpolation: Interpolation = "bilinear"
    antialias: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> RandomResizedCrop:
        for name in ("scale", "ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high")
        return self


class RandomHorizontalFlip(_Transform):
    type: Literal["RandomHorizontalFlip"]
    p: Probability = 0.5


class RandomVerticalFlip(_Transform):
    type: Literal["RandomVerticalFlip"]
    p: Probability = 0.5


JitterArg = Union[NonNegFloat, Range, None]  # noqa: UP007


class ColorJitter(_Transform):
    type: Literal["ColorJitter"]
    brightness: JitterArg = None
    contrast: JitterArg = None
    saturation: JitterArg = None
    hue: Union[Annotated[float, Field(ge=0, le=0.5)], Range, None] = None  # noqa: UP007


class Grayscale(_Transform):
    type: Literal["Grayscale"]
    num_output_channels: Literal[1, 3] = 1


class RandomGrayscale(_Transform):
    type: Literal["RandomGrayscale"]
    p: Probability = 0.1


class GaussianBlur(_Transform):
    type: Literal["GaussianBlur"]
    kernel_size: SizeArg
    sigma: Union[Annotated[float, Field(gt=0, allow_inf_nan=False)], Range] = [0.1, 2.0]  # noqa: UP007

    @model_validator(mode="after")
    def _odd(self) -> GaussianBlur:
        sizes = [self.kernel_size] if isinstance(self.kernel_size, int) else self.kernel_size
        if any(k % 2 == 0 for k in sizes):
            raise ValueError("kernel_size must be odd (torchvision's rule)")
        return self


class RandomRotation(_Transform):
    """Rotates within the frame (``expand`` is not offered: it would change the size)."""

    type: Literal["RandomRotation"]
    degrees: Union[NonNegFloat, Range]  # noqa: UP007
    interpolation: Literal["nearest", "bilinear"] = "nearest"
    fill: float = 0


class Normalize(_Transform):
    """``(x - mean) / std`` per channel, on values already scaled to [0, 1]."""

    type: Literal["Normalize"]
    mean: Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1)]
    std: Annotated[list[Annotated[float, Field(gt=0, allow_inf_nan=False)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _lengths(self) -> Normalize:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}")
        return self


_ALL = (
    Resize, CenterCrop, RandomCrop, RandomResizedCrop, RandomHorizontalFlip, RandomVerticalFlip,
    ColorJitter, Grayscale, RandomGrayscale, GaussianBlur, RandomRotation, Normalize,
)  # fmt: skip
TRANSFORMS: dict[str, type[_Transform]] = {c.__name__: c for c in _ALL}


def _bare(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


Transform = Annotated[
    Union[  # noqa: UP007
        Resize,
        CenterCrop,
        RandomCrop,
        RandomResizedCrop,
        RandomHorizontalFlip,
        RandomVerticalFlip,
        ColorJitter,
        Grayscale,
        RandomGrayscale,
        GaussianBlur,
        RandomRotation,
        Normalize,
    ],
    Field(discriminator="type"),
    BeforeValidator(_bare),
]
TransformList = Annotated[list[Transform], Field(max_length=64)]


def _hw(size: int | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def resizes(step: Any) -> bool:
    """Whether ``step`` changes the frame size."""
    return isinstance(step, (Resize, CenterCrop, RandomCrop, RandomResizedCrop))


def fixed_size(step: Any) -> tuple[int, int] | None:
    """The (h, w) every frame has after ``step``, when the step fixes it (crops, Resize to [h, w])."""
    if isinstance(step, (CenterCrop, RandomCrop, RandomResizedCrop)):
        return _hw(step.size)
    if isinstance(step, Resize) and isinstance(step.size, list) and len(step.size) == 2:
        return step.size[0], step.size[1]
    return None
