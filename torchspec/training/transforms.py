"""Declared transforms (see :mod:`torchspec.training.transform_config`) as torchvision v2 pipelines.

Names map to torchvision classes through the explicit table :data:`CLASSES` (never ``getattr`` or
an import by string). Frames stay uint8 through the geometric and colour steps (torchvision's fast
path), are scaled to float32 in [0, 1] just before the first Normalize (or at the end), and a clip
is a ``tv_tensors.Video`` (T, C, H, W): every random step draws its parameters once per clip, so all
frames of a clip get the same crop, flip and jitter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from torchspec.training import transform_config as T

__all__ = ["CLASSES", "Pipeline", "build_transform", "default_steps", "make_pipeline"]

CLASSES: dict[str, type[Any]] = {
    "Resize": v2.Resize,
    "CenterCrop": v2.CenterCrop,
    "RandomCrop": v2.RandomCrop,
    "RandomResizedCrop": v2.RandomResizedCrop,
    "RandomHorizontalFlip": v2.RandomHorizontalFlip,
    "RandomVerticalFlip": v2.RandomVerticalFlip,
    "ColorJitter": v2.ColorJitter,
    "Grayscale": v2.Grayscale,
    "RandomGrayscale": v2.RandomGrayscale,
    "GaussianBlur": v2.GaussianBlur,
    "RandomRotation": v2.RandomRotation,
    "Normalize": v2.Normalize,
}
_MODES = {
    "nearest": v2.InterpolationMode.NEAREST,
    "nearest-exact": v2.InterpolationMode.NEAREST_EXACT,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
}


def build_transform(step: Any) -> Any:
    """One declared step (a transform_config model) as the torchvision v2 object it names."""
    kwargs = step.model_dump(exclude={"type"})
    if "interpolation" in kwargs:
        kwargs["interpolation"] = _MODES[kwargs["interpolation"]]
    return CLASSES[step.type](**kwargs)


def default_steps(height: int, width: int) -> list[Any]:
    """Resize the short side to max(H, W), then centre-crop H x W: the documented default."""
    return [
        T.Resize(type="Resize", size=max(height, width)),
        T.CenterCrop(type="CenterCrop", size=[height, width]),
    ]


def _completed(steps: Sequence[Any] | None, height: int, width: int, channels: int) -> list[Any]:
    """The declared steps plus what makes every frame H x W with ``channels`` channels."""
    if steps is None:
        out = default_steps(height, width)
    else:
        out = list(steps)
        sizing = [i for i, s in enumerate(out) if T.resizes(s)]
        if not sizing:  # nothing sizes the frames: the default does, first
            out = default_steps(height, width) + out
        elif T.fixed_size(out[sizing[-1]]) is None:  # the last resize keeps the aspect: crop after it
            out.insert(sizing[-1] + 1, T.CenterCrop(type="CenterCrop", size=[height, width]))
    if channels == 1 and not any(isinstance(s, T.Grayscale) for s in out):
        out.insert(0, T.Grayscale(type="Grayscale"))
    return out


class Pipeline:
    """uint8 frames -> a float32 sample; a class (not a closure) so spawned workers can pickle it."""

    def __init__(self, compose: Any, clip: bool) -> None:
        self.compose, self.clip = compose, clip

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.clip:
            out = self.compose(tv_tensors.Video(frames))  # (T, C, H, W), one draw for the whole clip
            return out.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)
        return self.compose(tv_tensors.Image(frames)).as_subclass(torch.Tensor).contiguous()


def make_pipeline(steps: Sequence[Any] | None, input_shape: Sequence[int]) -> Pipeline:
    """uint8 frames -> a float32 sample of ``input_shape``.

    Takes (T, 3, H', W') for clips (returns (C, T, H, W)) or (3, H', W') for images (returns
    (C, H, W)).
    """
    channels, height, width = input_shape[0], input_shape[-2], input_shape[-1]
    built: list[Any] = []
    scaled = False
    for step in _completed(steps, height, width, channels):
        if isinstance(step, T.Normalize) and not scaled:
            built.append(v2.ToDtype(torch.float32, scale=True))
            scaled = True
        built.append(build_transform(step))
    if not scaled:
        built.append(v2.ToDtype(torch.float32, scale=True))
    return Pipeline(v2.Compose(built), clip=len(input_shape) == 4)
