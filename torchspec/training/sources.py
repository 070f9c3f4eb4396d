"""The built-in data sources and the ``tensors`` source: each becomes a map-style ``Dataset`` of
``(input, target)`` pairs, inputs and targets converted by the dtype rule (:mod:`.dtypes`).

The ``python`` source (the user's own code) lives in :mod:`.usercode`; files from strangers are read
through :mod:`.arrays`. A source that cannot be loaded raises :class:`SourceError`, which names the
key of the source it is about so the caller can point at that line of the spec (or its ``--set``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from torchspec.training import config as C
from torchspec.training.arrays import ArrayFileError, open_array
from torchspec.training.dtypes import INT64_MAX, id_values, input_values, largest, target_values
from torchspec.training.paths import resolve_path
from torchspec.training.sequence_data import SequenceError, synthetic_sequence

__all__ = ["ArrayDataset", "SourceError", "builtin_source", "synthetic_motion"]


class SourceError(ValueError):
    """A data source that cannot be loaded; ``key`` is the field of the source it is about."""

    def __init__(self, message: str, key: str | None = None, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.key, self.hints = key, tuple(hints)


def synthetic_motion(
    shape: Sequence[int], samples: int, classes: int = 4, noise: float = 0.3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``(N, C, T, H, W)`` of a bright square moving in one of ``classes`` directions.

    The label is the direction (class k: angle 2*pi*k/classes). The start position is random, so
    no single frame tells the direction: only the motion across frames does.
    """
    if len(shape) != 4:
        raise ValueError(f"synthetic-motion makes clips (C, T, H, W); the spec's input is {list(shape)}")
    c, t, h, w = shape
    rng = np.random.default_rng(seed)
    size = max(2, min(h, w) // 6)  # side of the square
    labels = rng.integers(0, classes, samples)
    angle = 2 * np.pi * labels / classes
    # Speed so the whole path fits on screen: between 50% and 100% of the room left by the square.
    room = (min(h, w) - size) / max(t - 1, 1)
    speed = rng.uniform(0.5, 1.0, samples) * room * 0.5
    dy, dx = np.sin(angle) * speed, np.cos(angle) * speed  # pixels per frame, (N,)
    span_y, span_x = dy * (t - 1), dx * (t - 1)  # total displacement, (N,)
    # Start anywhere the square stays inside the frame for the whole clip.
    lo_y, hi_y = np.maximum(0, -span_y), (h - size) - np.maximum(0, span_y)
    lo_x, hi_x = np.maximum(0, -span_x), (w - size) - np.maximum(0, span_x)
    y0 = lo_y + rng.uniform(0, 1, samples) * (hi_y - lo_y)
    x0 = lo_x + rng.uniform(0, 1, samples) * (hi_x - lo_x)
    steps = np.arange(t)
    top = np.rint(y0[:, None] + dy[:, None] * steps)  # (N, T): the square's row in each frame
    left = np.rint(x0[:, None] + dx[:, None] * steps)  # (N, T)
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= top[..., None]) & (rows < top[..., None] + size)  # (N, T, H)
    in_cols = (cols >= left[..., None]) & (cols < left[..., None] + size)  # (N, T, W)
    square = in_rows[..., :, None] & in_cols[..., None, :]  # (N, T, H, W)
    brightness = rng.uniform(0.6, 1.0, (samples, 1, 1, 1)).astype(np.float32)
    clips = square[:, None].astype(np.float32) * brightness[:, None]  # (N, 1, T, H, W)
    clips = np.repeat(clips, c, axis=1)  # (N, C, T, H, W): the same square in every channel
    clips += rng.standard_normal(clips.shape, dtype=np.float32) * np.float32(noise)
    return torch.from_numpy(clips), torch.from_numpy(labels.astype(np.int64))


class ArrayDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples from arrays or tensors that may be memory-mapped: each item is copied out and
    converted by the dtype rule (inputs to float32, labels to int64) when asked for."""

    def __init__(self, inputs: Any, targets: Any, ids: bool = False) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets = inputs, targets
        self.ids = ids  # the spec's input is int64 token ids: integers stay integers

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = _row(self.inputs, index)
        x = id_values(row) if self.ids else input_values(row)
        return _tensor(x), _tensor(target_values(_row(self.targets, index)))


def _row(values: Any, index: int) -> Any:
    row = values[index]
    return row if isinstance(row, torch.Tensor) else np.asarray(row)


def _tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(value)  # converted: owned


def _open(path: str, key: str | None, what: str, field: str) -> Any:
    try:
        return open_array(path, key, what)
    except ArrayFileError as exc:
        raise SourceError(str(exc), field) from None


def _tensors(cfg: C.Tensors, base_dir: str | None, ids: bool = False) -> Dataset[Any]:
    inputs_path = resolve_path(cfg.inputs, base_dir)
    if cfg.targets is None and inputs_path.lower().endswith(".npy"):
        raise SourceError("a .npy file holds one array: give the targets as `targets: FILE`", "inputs")
    inputs = _open(inputs_path, cfg.inputs_key, "inputs", "inputs")
    if cfg.targets is not None:
        targets = _open(resolve_path(cfg.targets, base_dir), cfg.targets_key, "targets", "targets")
    else:
        targets = _open(inputs_path, cfg.targets_key, "targets", "inputs")
    field = "targets" if cfg.targets is not None else "inputs"
    if str(targets.dtype).endswith("uint64") and len(targets) and largest(targets) > INT64_MAX:
        raise SourceError(
            f"the targets hold a uint64 label of {largest(targets)}, above int64's maximum {INT64_MAX}",
            field,
            ["class labels are 0 .. classes-1: save them as int64"],
        )
    if len(inputs) != len(targets):
        message = f"{len(inputs)} inputs but {len(targets)} targets: give one target per input"
        raise SourceError(message, field)
    for values, key, what in ((inputs, "inputs", "input"), (targets, field, "target")):
        bad = first_nonfinite(values)
        if bad is not None:
            raise SourceError(
                f"{what} sample {bad} holds NaN or infinite values: training on it would only diverge",
                key,
                ["replace or drop the non-finite samples (np.isfinite(x).all(axis=...))"],
            )
    return ArrayDataset(inputs, targets, ids)


CHUNK = 1 << 22  # elements checked at a time: bounded memory for a memory-mapped file


def first_nonfinite(values: Any) -> int | None:
    """The index of the first sample of a float array or tensor holding NaN or inf, else None;
    read in chunks of rows, so a memory-mapped file is never loaded whole."""
    is_float = values.is_floating_point() if isinstance(values, torch.Tensor) else values.dtype.kind in "fc"
    if not is_float or len(values) == 0:
        return None
    per_row = max(1, int(np.prod(values.shape[1:])))
    rows = max(1, CHUNK // per_row)
    for start in range(0, len(values), rows):
        chunk = values[start : start + rows]
        finite = torch.isfinite(chunk) if isinstance(chunk, torch.Tensor) else np.isfinite(np.asarray(chunk))
        ok = finite.reshape(len(chunk), -1).all(1)
        if not bool(ok.all()):
            bad = (~ok).nonzero()
            return start + int(bad[0][0] if isinstance(bad, tuple) else bad[0, 0])
    return None


def _digits() -> tuple[Dataset[Any], int]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SourceError("the digits source needs scikit-learn: pip install 'torchspec[digits]'") from None
    bunch = load_digits()
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8)
    return TensorDataset(images, torch.from_numpy(bunch.target.astype(np.int64))), 10


def _torchvision(cfg: C.Torchvision, base_dir: str | None) -> Dataset[Any]:
    try:
        import torchvision
        from torchvision import transforms
    except ImportError:
        message = "the torchvision source needs torchvision: pip install 'torchspec[vision]'"
        raise SourceError(message) from None
    # Only the data set classes torchvision exports: `name` never reaches other attributes.
    known = [n for n in torchvision.datasets.__all__ if _is_dataset(getattr(torchvision.datasets, n, None))]
    if cfg.name not in known:
        from torchspec.diagnose import did_you_mean

        guess = did_you_mean(cfg.name, known, plain=True)
        raise SourceError(
            f"torchvision.datasets has no data set '{cfg.name}'", "name", [guess] if guess else []
        )
    steps: list[Any] = [getattr(transforms, name)() for name in cfg.transform if name != "Normalize"]
    if "Normalize" in cfg.transform:
        steps.append(transforms.Normalize((0.5,), (0.5,)))
    transform = transforms.Compose(steps)
    factory = getattr(torchvision.datasets, cfg.name)
    root = resolve_path(cfg.root, base_dir)
    if cfg.name in ("ImageFolder", "DatasetFolder"):
        return factory(root, transform=transform)  # type: ignore[no-any-return]
    return factory(root, train=cfg.train, download=cfg.download, transform=transform)  # type: ignore[no-any-return]


def _is_dataset(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Dataset)


def builtin_source(
    cfg: Any,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    seed: int,
    base_dir: str | None,
    ids: tuple[int, int] | None = None,
) -> tuple[Dataset[Any], int | None]:
    """(dataset, classes if the source knows them) for every source but ``python``.

    ``ids``: the ``[low, high)`` of an int64 (token id) input; None for float32 inputs."""
    if isinstance(cfg, C.SyntheticSequence):
        own = seed if cfg.seed is None else cfg.seed
        try:
            x, y = synthetic_sequence(
                input_shape, ids, cfg.samples, cfg.classes, cfg.vocab, cfg.min_length, own
            )
        except SequenceError as exc:
            raise SourceError(str(exc), exc.key) from None
        return TensorDataset(x, y), cfg.classes
    if isinstance(cfg, C.SyntheticMotion):
        own = seed if cfg.seed is None else cfg.seed
        x, y = synthetic_motion(input_shape, cfg.samples, cfg.classes, cfg.noise, own)
        return TensorDataset(x, y), cfg.classes
    if isinstance(cfg, C.RandomData):
        gen = torch.Generator().manual_seed(seed if cfg.seed is None else cfg.seed)
        x = torch.randn((cfg.samples, *input_shape), generator=gen) * cfg.scale
        if ids is not None:  # token ids: uniform over the input's range
            x = torch.randint(ids[0], ids[1], (cfg.samples, *input_shape), generator=gen)
        if cfg.task == "regression":
            return TensorDataset(x, torch.randn((cfg.samples, *output_shape), generator=gen)), None
        return TensorDataset(x, torch.randint(0, cfg.classes, (cfg.samples,), generator=gen)), cfg.classes
    if isinstance(cfg, C.Digits):
        return _digits()
    if isinstance(cfg, C.Tensors):
        return _tensors(cfg, base_dir, ids is not None), None
    if isinstance(cfg, C.Torchvision):
        return _torchvision(cfg, base_dir), None
    raise TypeError(f"unknown data source {cfg!r}")
