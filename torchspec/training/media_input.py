"""``predict`` on a video or an image file: the sample that ``eval`` would see for that file.

The clip is sampled and transformed as validation does (centred clip, ``eval_transform``), with the
settings of the spec's folder source (``train.val`` when it is one, else ``train.data``); a spec
trained on another source uses the defaults (every frame from the centre; resize the short side
and centre-crop to the input's H x W; scale to [0, 1]).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.spec import Spec
from torchspec.training.folder_config import FolderSource, ImageFolder, VideoFolder
from torchspec.training.folder_scan import IMAGE_EXTS, VIDEO_EXTS, file_problem

__all__ = ["is_media", "load_media"]


def is_media(path: str) -> bool:
    """Whether ``path`` names a video or an image (by extension)."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTS + IMAGE_EXTS


def _settings(spec: Spec, video: bool) -> Any:
    """The folder source whose clip settings and eval_transform predict applies."""
    train = spec.train if isinstance(spec.train, dict) else {}
    for key in ("val", "data"):
        node = train.get(key)
        if isinstance(node, dict) and node.get("source") in ("video-folder", "frame-folder", "image-folder"):
            from torchspec.training.config import TrainConfig

            cfg = getattr(TrainConfig.model_validate(train), key)
            if isinstance(cfg, FolderSource):
                fields: dict[str, Any] = {"eval_transform": cfg.eval_transform, "max_pixels": cfg.max_pixels}
                if video:
                    fields["frame_stride"] = getattr(cfg, "frame_stride", 1)
                    fields["fps"] = getattr(cfg, "fps", None)
                break
    else:
        fields = {}
    if video:
        return VideoFolder(source="video-folder", root=".", on_error="raise", **fields)
    fields.pop("frame_stride", None)
    fields.pop("fps", None)
    return ImageFolder(source="image-folder", root=".", on_error="raise", **fields)


def load_media(path: str, spec: Spec) -> torch.Tensor:
    """A batch of one: (1, *spec.input_shape) float32 from a video or image file."""
    from torchspec.training.folders import FolderDataset

    video = os.path.splitext(path)[1].lower() in VIDEO_EXTS
    shape = tuple(spec.input_shape)
    want = 4 if video else 3
    if len(shape) != want:
        kind = "a video" if video else "an image"
        takes = "clips (C, T, H, W)" if want == 4 else "images (C, H, W)"
        raise SpecError.single(path, f"{path} is {kind}, but the model takes {list(shape)}, not {takes}")
    why = file_problem(path)
    if why:
        raise SpecError.single(path, f"cannot read {path}: {why}")
    cfg = _settings(spec, video)
    info = None
    try:
        if video:
            from torchspec.training.video import probe

            info = probe(path, cfg.max_pixels)
        dataset = FolderDataset(cfg, [[path]], [0], [info], shape, seed=0).for_eval()
        return dataset[0][0].unsqueeze(0)
    except (ValueError, RuntimeError, OSError, ImportError) as exc:
        raise SpecError.single(path, f"cannot read {path}: {exc}") from None
