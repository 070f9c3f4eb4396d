"""The ``video-folder``, ``frame-folder`` and ``image-folder`` sources as map-style Datasets.

Sample ``i`` is clip ``i % clips_per_video`` of item ``i // clips_per_video`` (a video, a frame
folder or an image), as a float32 tensor of the spec's ``input`` shape ((C, T, H, W) or (C, H, W))
with its class index. Decoding happens in ``__getitem__``, so in the DataLoader's workers.

Randomness (a training clip's temporal position, the random transforms) comes from a generator
seeded by ``(seed, epoch, i)``, never from the process's RNG: a sample is the same whichever worker
loads it, and a run resumed mid-epoch sees exactly the samples of an uninterrupted one. The epoch
is a shared-memory cell that :class:`~torchspec.training.data.EpochSampler` writes before each
epoch, so persistent workers see it too. Validation takes the centred clip (evenly spaced clips
with ``clips_per_video`` > 1) through ``eval_transform``.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from torchspec.training.folder_config import FolderSource
from torchspec.training.folder_scan import file_problem, scan
from torchspec.training.paths import resolve_path
from torchspec.training.transforms import make_pipeline

__all__ = ["FolderDataset", "folder_source", "read_image"]

_warned: set[str] = set()  # files this process has already warned about


def read_image(path: str, max_pixels: int) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB; ValueError if unreadable or over ``max_pixels``."""
    from PIL import Image, UnidentifiedImageError

    why = file_problem(path)  # checked again: the file may have changed since the scan
    if why:
        raise ValueError(why)
    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(f"{width}x{height} pixels exceed max_pixels {max_pixels}")
            return np.array(image.convert("RGB"))  # owned and writable
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"cannot read the image ({exc})") from None


class FolderDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Clips or images of the items a folder scan found; see the module docstring."""

    def __init__(
        self,
        cfg: Any,
        items: list[list[str]],
        labels: list[int],
        infos: list[Any],
        input_shape: Sequence[int],
        seed: int,
    ) -> None:
        self.cfg, self.items, self.labels, self.infos = cfg, items, labels, infos
        self.input_shape = tuple(input_shape)
        self.seed, self.train = seed, True
        self.classes: list[str] = []  # the class names (folder names), set by the scan
        self.clips = getattr(cfg, "clips_per_video", 1)
        self.frames = self.input_shape[1] if len(self.input_shape) == 4 else 0
        self.train_pipeline = make_pipeline(cfg.transform, self.input_shape)
        self.eval_pipeline = make_pipeline(cfg.eval_transform, self.input_shape)
        self.epoch_cell = torch.zeros(1, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.items) * self.clips

    def for_eval(self) -> FolderDataset:
        """The same items for validation: centred clips and the eval transform."""
        view = copy.copy(self)
        view.train = False
        view.epoch_cell = torch.zeros(1, dtype=torch.int64)
        return view

    def split(self, fraction: float, seed: int) -> tuple[Dataset[Any], Dataset[Any]]:
        """(train, val) by item, so the clips of one video stay on one side."""
        n = len(self.items)
        n_val = min(max(1, round(n * fraction)), n - 1)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()

        def samples(chosen: list[int]) -> list[int]:
            return [item * self.clips + k for item in sorted(chosen) for k in range(self.clips)]

        return Subset(self, samples(order[n_val:])), Subset(self.for_eval(), samples(order[:n_val]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item, clip = divmod(index, self.clips)
        for attempt in range(len(self.items)):
            current = (item + attempt) % len(self.items)
            try:
                x = self._load(current, clip, index)
            except (ValueError, OSError, RuntimeError) as exc:
                path = self.items[current][0]
                if self.cfg.on_error == "raise":
                    raise RuntimeError(f"{path}: {exc} (on_error: raise)") from None
                if path not in _warned:
                    _warned.add(path)
                    print(f"warning: skipping unreadable {path}: {exc}", file=sys.stderr, flush=True)
                continue
            return x, torch.tensor(self.labels[current])
        raise RuntimeError(f"no readable file left in {self.cfg.root}")

    def _load(self, item: int, clip: int, index: int) -> torch.Tensor:
        epoch = int(self.epoch_cell[0]) if self.train else 0
        rng = np.random.default_rng([self.seed, epoch, index, int(self.train)])
        pipeline = self.train_pipeline if self.train else self.eval_pipeline
        if not self.frames:
            frames = torch.from_numpy(read_image(self.items[item][0], self.cfg.max_pixels)).permute(2, 0, 1)
        else:
            frames = torch.from_numpy(self._clip(item, clip, rng)).permute(0, 3, 1, 2)  # (T, 3, H, W)
        # The random transforms draw from torch's CPU generator: seed it for this sample, then put
        # the process's state back (dropout's draws in the main process stay untouched).
        generator = torch.random.default_generator
        state = generator.get_state()
        generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
        try:
            return pipeline(frames)
        finally:
            generator.set_state(state)

    def _clip(self, item: int, clip: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 (T, H, W, 3) frames of one clip."""
        from torchspec.training.video import clip_indices, read_frames

        files, info = self.items[item], self.infos[item]
        n = info.frames if info is not None else len(files)
        fps = getattr(self.cfg, "fps", None)
        stride = info.fps / fps if fps and info is not None else float(self.cfg.frame_stride)
        room = max(n - ((self.frames - 1) * stride + 1), 0.0)  # the last possible start
        if self.train:
            start = float(rng.integers(0, int(room) + 1))
        elif self.clips == 1:
            start = float(int(room / 2))
        else:
            start = float(round(clip * room / (self.clips - 1)))
        indices = clip_indices(n, self.frames, stride, start)
        if info is not None:
            return read_frames(files[0], indices, info.fps)
        return np.stack([read_image(files[i], self.cfg.max_pixels) for i in indices])


def folder_source(
    cfg: FolderSource, input_shape: Sequence[int], seed: int, base_dir: str | None, say: Any
) -> tuple[FolderDataset, int]:
    """Scan ``cfg.root`` and build the dataset; ValueError when nothing usable is left."""
    from torchspec.training.video import probe

    kind: str = cfg.source  # type: ignore[attr-defined]
    root = resolve_path(cfg.root, base_dir)
    list_file = getattr(cfg, "list_file", None)
    found = scan(root, kind, resolve_path(list_file, base_dir) if list_file else None)
    infos: list[Any] = [None] * len(found.items)
    if kind == "video-folder":  # the header of every video: frame count and rate, or why not
        kept: list[int] = []
        for i, files in enumerate(found.items):
            try:
                infos[i] = probe(files[0], cfg.max_pixels)
                kept.append(i)
            except ValueError as exc:
                found.skipped.append((files[0], str(exc)))
        found.items = [found.items[i] for i in kept]
        found.labels = [found.labels[i] for i in kept]
        infos = [infos[i] for i in kept]
    for path, why in found.skipped:
        if cfg.on_error == "raise":
            raise ValueError(f"{path}: {why} (on_error: raise; on_error: skip skips it with a warning)")
        say(f"warning: skipping {path}: {why}")
    if found.skipped:
        say(f"{kind}: skipped {len(found.skipped)} unusable of {found.seen} files in {root}")
    if not found.items:
        raise ValueError(f"no usable files in {root} (expected root/<class>/{_layout(kind)})")
    classes = max(len(found.classes), max(found.labels) + 1)
    if len(set(found.labels)) < 2:
        only = found.classes[found.labels[0]] if found.labels[0] < len(found.classes) else found.labels[0]
        raise ValueError(
            f"{root} has usable files of only one class ({only}): a classifier needs at least 2 classes"
        )
    dataset = FolderDataset(cfg, found.items, found.labels, infos, input_shape, seed)
    dataset.classes = found.classes  # the class names, for eval's confusion picture
    return dataset, classes


def _layout(kind: str) -> str:
    return {"video-folder": "<video>.mp4", "frame-folder": "<video>/<frame>.jpg"}.get(kind, "<image>.jpg")
