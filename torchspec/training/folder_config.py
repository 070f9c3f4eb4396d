"""The folder data sources (``video-folder``, ``frame-folder``, ``image-folder``) as pydantic models,
and the static check of their clip and crop sizes against the spec's ``input``.

Torch-free: ``torchspec check`` validates these and runs :func:`folder_problems`, so ``frames: 8``
with ``input: [3, 16, 112, 112]`` is a located error at ``frames`` before anything is decoded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from torchspec.training.transform_config import Normalize, TransformList, fixed_size, resizes

__all__ = ["MAX_FRAMES", "FolderSource", "FrameFolder", "ImageFolder", "VideoFolder", "folder_problems"]

MAX_FRAMES = 1024  # frames per clip: bounded work and memory per sample
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class FolderSource(BaseModel):
    """Fields shared by the folder sources. ``root`` is relative to the spec file's folder."""

    model_config = ConfigDict(extra="forbid", strict=True)

    val_fraction: Fraction | None = Field(
        default=None, description="share held out for validation (default 0.2 without train.val)"
    )
    root: Annotated[str, Field(min_length=1, description="the folder: root/<class>/...")]
    transform: TransformList | None = Field(
        default=None, description="training transforms (default: resize short side, centre crop)"
    )
    eval_transform: TransformList | None = Field(
        default=None, description="validation/eval/predict transforms (default: resize, centre crop)"
    )
    on_error: Literal["skip", "raise"] = Field(
        default="skip", description="unreadable files: skip with a warning, or stop with an error"
    )
    max_pixels: Annotated[int, Field(strict=True, ge=1, le=2**30)] = Field(
        default=2**25, description="larger images or video frames (width x height) are refused"
    )


class _Clips(FolderSource):
    frames: Annotated[int, Field(strict=True, ge=1, le=MAX_FRAMES)] | None = Field(
        default=None, description="frames per clip (default: the input's T)"
    )
    frame_stride: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        default=1, description="take every n-th frame"
    )
    clips_per_video: Annotated[int, Field(strict=True, ge=1, le=100)] = Field(
        default=1, description="samples per video (random in training, evenly spaced in validation)"
    )


class VideoFolder(_Clips):
    """Videos (.mp4 .avi .mkv .webm .mov) in root/<class>/, or listed in a CSV/UCF-style list file."""

    source: Literal["video-folder"]
    list_file: str | None = Field(
        default=None, description="a list file: CSV `path,label` or UCF-style `path [index]` lines"
    )
    fps: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        default=None, description="sample at this frame rate instead of frame_stride"
    )

    @model_validator(mode="after")
    def _stride_or_fps(self) -> VideoFolder:
        if self.fps is not None and self.frame_stride != 1:
            raise ValueError("give frame_stride or fps, not both")
        return self


class FrameFolder(_Clips):
    """Pre-extracted frames: root/<class>/<video>/<frame>.jpg (or .jpeg/.png), sorted by name."""

    source: Literal["frame-folder"]


class ImageFolder(FolderSource):
    """Images (.jpg .jpeg .png .bmp .gif .webp .tif .tiff) in root/<class>/."""

    source: Literal["image-folder"]


RANK = {"video-folder": 4, "frame-folder": 4, "image-folder": 3}


def folder_problems(doc: Any, config: Any) -> list[Any]:
    """Located problems of the folder sources in ``config`` (a TrainConfig) against ``doc``'s input."""
    problems: list[Any] = []
    shape = doc.data.get("input") if isinstance(doc.data, dict) else None
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        return problems  # the spec's own validation reports a bad input
    for key in ("data", "val"):
        cfg = getattr(config, key, None)
        if isinstance(cfg, FolderSource):
            problems += _source_problems(doc, ("train", key), cfg, shape)
    return problems


def _source_problems(doc: Any, at: tuple[Any, ...], cfg: Any, shape: list[int]) -> list[Any]:
    kind = cfg.source
    rank = RANK[kind]
    if len(shape) != rank:
        what = "clips [C, T, H, W]" if rank == 4 else "images [C, H, W]"
        message = f"{kind} yields {what}, but the spec's input is {shape}"
        hint = "set input: [3, 16, 112, 112] (C, T, H, W)" if rank == 4 else "set input: [3, 224, 224]"
        return [doc.problem((*at, "source"), message, [hint])]
    problems = []
    channels, (height, width) = shape[0], shape[-2:]
    if channels not in (1, 3):
        message = f"{kind} decodes RGB (3 channels) or grayscale (1); the spec's input has {channels}"
        problems.append(doc.problem(("input",), message, ["set the input's first entry to 3 or 1"]))
    frames = getattr(cfg, "frames", None)
    if rank == 4 and frames is not None and frames != shape[1]:
        message = f"{kind}: frames is {frames} but the spec's input {shape} takes clips of {shape[1]} frames"
        hints = [f"set frames: {shape[1]} (or leave it out), or change the input's T to {frames}"]
        problems.append(doc.problem((*at, "frames"), message, hints))
    for name in ("transform", "eval_transform"):
        steps = getattr(cfg, name)
        for index, step in enumerate(steps or []):
            here = (*at, name, index)
            label = f"{'.'.join(at)}.{name}[{index}]"
            size = fixed_size(step)
            later = any(resizes(s) for s in steps[index + 1 :])
            if size is not None and not later and size != (height, width):
                message = (
                    f"{step.type} ({label}) makes frames of {size[0]}x{size[1]}, but the spec's "
                    f"input takes {height}x{width} (H x W)"
                )
                hints = [f"set size: [{height}, {width}]" if height != width else f"set size: {height}"]
                problems.append(doc.problem((*here, "size"), message, hints))
            if isinstance(step, Normalize) and len(step.mean) not in (1, channels):
                message = (
                    f"Normalize ({label}) has {len(step.mean)} means and stds, but the "
                    f"input has {channels} channels"
                )
                problems.append(doc.problem((*here, "mean"), message, [f"give {channels} values (or 1)"]))
    return problems
