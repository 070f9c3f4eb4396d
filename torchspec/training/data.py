"""Data sources for training: built-in synthetic data, bundled digits, the user's files or code.

Every source becomes a map-style ``Dataset`` of ``(input, target)`` pairs. The loaders use
:class:`EpochSampler`, whose order for an epoch depends only on ``(seed, epoch)``, so a run resumed
mid-epoch can skip exactly the batches already done and see the same data as an uninterrupted one.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset

from torchspec.errors import SpecError
from torchspec.training import config as C
from torchspec.training.folder_config import FolderSource

__all__ = ["Data", "EpochSampler", "load_data", "make_loader", "synthetic_motion"]


@dataclass
class Data:
    train: Dataset[Any]
    val: Dataset[Any] | None
    classes: int | None  # number of classes when the source knows it
    description: str


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
    """Samples from arrays that may be memory-mapped: each item is copied out when asked for."""

    def __init__(self, inputs: Any, targets: Any) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _tensor(self.inputs[index]), _tensor(self.targets[index])


def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    array = np.array(value)  # a copy: memory-mapped rows become writable, owned memory
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(array)


def _path(name: str, base_dir: str | None) -> str:
    path = os.path.expanduser(name)
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return path


def _load_array(path: str, key: str | None, what: str) -> Any:
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file {path} does not exist")
    if ext == ".npy":
        return np.load(path, mmap_mode="r", allow_pickle=False)  # memory-mapped: bigger than RAM is fine
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive:
                raise KeyError(f"{path} has no array '{key}' (it has: {', '.join(archive.files)})")
            return archive[key]
    if ext == ".pt":
        loaded = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
        if isinstance(loaded, dict):
            if key not in loaded:
                raise KeyError(f"{path} has no entry '{key}' (it has: {', '.join(map(str, loaded))})")
            return loaded[key]
        return loaded
    raise ValueError(f"{what} file {path}: use .npz, .npy or .pt")


def _tensors(cfg: C.Tensors, base_dir: str | None) -> Dataset[Any]:
    inputs_path = _path(cfg.inputs, base_dir)
    if cfg.targets is None and inputs_path.endswith(".npy"):
        raise ValueError("a .npy file holds one array: give the targets as `targets: FILE`")
    inputs = _load_array(inputs_path, cfg.inputs_key, "inputs")
    if cfg.targets is not None:
        targets = _load_array(_path(cfg.targets, base_dir), cfg.targets_key, "targets")
    else:
        targets = _load_array(inputs_path, cfg.targets_key, "targets")
    for array, what, name in (
        (inputs, "inputs", inputs_path),
        (targets, "targets", cfg.targets or inputs_path),
    ):
        dtype = getattr(array, "dtype", None)
        if isinstance(dtype, np.dtype) and dtype.kind not in "biuf":
            raise TypeError(
                f"the {what} in {name} are {dtype} values, not real numbers or bools: "
                "save numeric arrays (e.g. labels as int64, features as float32)"
            )
    return ArrayDataset(inputs, targets)


def _digits() -> tuple[Dataset[Any], int]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits source needs scikit-learn: pip install 'torchspec[digits]'") from None
    bunch = load_digits()
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8)
    return TensorDataset(images, torch.from_numpy(bunch.target.astype(np.int64))), 10


def _torchvision(cfg: C.Torchvision) -> Dataset[Any]:
    try:
        import torchvision
        from torchvision import transforms
    except ImportError:
        raise ImportError(
            "the torchvision source needs torchvision: pip install 'torchspec[vision]'"
        ) from None
    steps: list[Any] = [getattr(transforms, name)() for name in cfg.transform if name != "Normalize"]
    if "Normalize" in cfg.transform:
        steps.append(transforms.Normalize((0.5,), (0.5,)))
    transform = transforms.Compose(steps)
    factory = getattr(torchvision.datasets, cfg.name, None)
    if factory is None:
        raise ValueError(f"torchvision.datasets has no dataset '{cfg.name}'")
    if cfg.name in ("ImageFolder", "DatasetFolder"):
        return factory(cfg.root, transform=transform)  # type: ignore[no-any-return]
    return factory(cfg.root, train=cfg.train, download=cfg.download, transform=transform)  # type: ignore[no-any-return]


def _python(cfg: C.PythonData, say: Any) -> Dataset[Any]:
    module_name, _, class_name = cfg.target.partition(":")
    say(f"importing user code: module {module_name} (train data source {cfg.target})")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise AttributeError(f"module {module_name} has no attribute {class_name}")
    dataset = cls(**cfg.args)
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"{cfg.target} is not a map-style dataset (it needs __len__ and __getitem__)")
    return dataset  # type: ignore[no-any-return]


def _source(
    cfg: Any,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    seed: int,
    base_dir: str | None,
    say: Any,
) -> tuple[Dataset[Any], int | None]:
    if isinstance(cfg, C.SyntheticMotion):
        x, y = synthetic_motion(input_shape, cfg.samples, cfg.classes, cfg.noise, _seed(cfg.seed, seed))
        return TensorDataset(x, y), cfg.classes
    if isinstance(cfg, C.RandomData):
        gen = torch.Generator().manual_seed(_seed(cfg.seed, seed))
        x = torch.randn((cfg.samples, *input_shape), generator=gen) * cfg.scale
        if cfg.task == "regression":
            return TensorDataset(x, torch.randn((cfg.samples, *output_shape), generator=gen)), None
        return TensorDataset(x, torch.randint(0, cfg.classes, (cfg.samples,), generator=gen)), cfg.classes
    if isinstance(cfg, C.Digits):
        return _digits()
    if isinstance(cfg, C.Tensors):
        return _tensors(cfg, base_dir), None
    if isinstance(cfg, C.Torchvision):
        return _torchvision(cfg), None
    if isinstance(cfg, C.PythonData):
        return _python(cfg, say), None
    if isinstance(cfg, FolderSource):  # video-folder, frame-folder, image-folder
        from torchspec.training.folders import folder_source

        return folder_source(cfg, input_shape, seed, base_dir, say)
    raise TypeError(f"unknown data source {cfg!r}")


def _seed(own: int | None, default: int) -> int:
    return default if own is None else own


def load_data(
    config: C.TrainConfig,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    *,
    file: str,
    base_dir: str | None = None,
    say: Any = print,
) -> Data:
    """Build the train and validation datasets; failures are SpecErrors pointing at train.data."""

    def located(key: str, cfg: Any) -> tuple[Dataset[Any], int | None]:
        try:
            return _source(cfg, input_shape, output_shape, config.seed, base_dir, say)
        except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            message = f"train.{key} ({cfg.source}): {exc}"
            raise SpecError.single(file, message) from None

    train, classes = located("data", config.data)
    val: Dataset[Any] | None = None
    if classes is None:  # sources that know their classes are checked against the model by the loop
        _check_labels(config, output_shape, train, "train.data", file)
    if config.val is not None:
        val = located("val", config.val)[0]
        val = val.for_eval() if hasattr(val, "for_eval") else val  # folder sources: centred clips
        if classes is None:
            _check_labels(config, output_shape, val, "train.val", file)
    elif config.val_fraction > 0 and hasattr(train, "split"):  # folder sources split by video
        train, val = train.split(config.val_fraction, config.seed)
    elif config.val_fraction > 0:
        # A fixed split: the first val_fraction of a permutation seeded by train.seed.
        # At least one validation sample, but never all of them: training needs some too.
        n = len(train)  # type: ignore[arg-type]
        n_val = min(max(1, round(n * config.val_fraction)), n - 1)
        if n_val > 0:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed)).tolist()
            train, val = Subset(train, order[n_val:]), Subset(train, order[:n_val])
    n_train = len(train)  # type: ignore[arg-type]
    n_val_ = len(val) if val is not None else 0  # type: ignore[arg-type]
    steps = n_train // config.batch_size if config.drop_last else -(-n_train // config.batch_size)
    if steps == 0:
        split = f"{n_train} train / {n_val_} val samples"
        if config.drop_last and n_train > 0:
            message = (
                f"no training steps: train.data ({config.data.source}) gives {split}, fewer train samples "
                f"than batch_size {config.batch_size}, and drop_last: true drops the only, partial batch"
            )
            hints = [
                f"lower train.batch_size to at most {n_train}, set train.drop_last: false, or add samples"
            ]
            raise SpecError([_problem(file, ("train", "drop_last"), message, hints)])
        message = (
            f"no training steps: train.data ({config.data.source}) gives {split}"
            f" (batch_size {config.batch_size})"
        )
        hints = ["give train.data more samples (at least 2 with a validation split)"]
        raise SpecError([_problem(file, ("train", "data"), message, hints)])
    text = f"{config.data.source}: {n_train} train / {n_val_} val samples"
    return Data(train, val, classes, text)


def _in_memory_targets(dataset: Dataset[Any]) -> Any:
    """All the targets of an in-memory dataset (a tensor or an array), or None if not at hand."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[1]
    if isinstance(dataset, ArrayDataset):
        return dataset.targets
    return None


def _check_labels(
    config: C.TrainConfig, output_shape: Sequence[int], dataset: Dataset[Any], key: str, file: str
) -> None:
    """For classification losses, every label of an in-memory dataset in [0, classes)."""
    from torchspec.training.parts import label_range_problem

    if config.loss.type not in C.CLASSIFICATION_LOSSES:
        return
    targets = _in_memory_targets(dataset)
    if targets is None:
        return
    array = targets.numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if array.size == 0 or array.dtype.kind not in "iu":  # float targets: the first-batch check says why
        return
    ignore = getattr(config.loss, "ignore_index", None)
    labels = array[array != ignore] if ignore is not None else array
    if labels.size == 0:
        return
    found = label_range_problem(
        config.loss.type, tuple(output_shape), int(labels.min()), int(labels.max()), key
    )
    if found is not None:
        raise SpecError([_problem(file, ("train", "loss"), found[0], found[1])])


def _problem(file: str, path: tuple[str, ...], message: str, hints: Sequence[str] = ()) -> Any:
    """A problem located at ``path`` in the spec file when it can be read, else at the file."""
    from torchspec.errors import Problem
    from torchspec.source import load_document

    if os.path.isfile(file):
        try:
            return load_document(file).problem(path, message, hints)
        except SpecError:
            pass
    return Problem(file, 0, 0, message, tuple(hints))


class EpochSampler(Sampler[int]):
    """Indices for one epoch: a permutation from a generator seeded by (seed, epoch), from ``start``.

    Under DDP (``world_size`` > 1) rank r takes every world_size-th index from r, after padding the
    permutation by its own head to a multiple of world_size, as torch's DistributedSampler does. So
    batch k of all ranks together is slice k of the single-process permutation with batch
    world_size x batch_size: the same global batches. ``start`` counts this rank's samples.
    """

    def __init__(self, size: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        self.epoch_cell: torch.Tensor | None = None  # a dataset's shared epoch (folder sources)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """``start``: samples of this epoch already seen (resuming mid-epoch skips them)."""
        self.epoch, self.start = epoch, start
        if self.epoch_cell is not None:
            self.epoch_cell.fill_(epoch)

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch`` (all of them, ignoring ``start``)."""
        if not self.shuffle:
            order = list(range(self.size))
        else:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            order = torch.randperm(self.size, generator=gen).tolist()
        if self.world_size == 1:
            return order
        padded = order + order[: self.per_rank * self.world_size - self.size]
        return padded[self.rank :: self.world_size]

    @property
    def per_rank(self) -> int:
        return -(-self.size // self.world_size)  # ceil

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker's torch and `random`; numpy needs it too for users' datasets.
    np.random.seed(torch.initial_seed() % 2**32)
    random.seed(torch.initial_seed())


def make_loader(
    dataset: Dataset[Any],
    config: C.TrainConfig,
    *,
    train: bool,
    pin_memory: bool,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader[Any], EpochSampler]:
    """A loader over ``dataset``; with ``world_size`` > 1, over this rank's share of each epoch."""
    size = len(dataset)  # type: ignore[arg-type]
    sampler = EpochSampler(size, config.shuffle and train, config.seed, rank, world_size)
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    sampler.epoch_cell = getattr(base, "epoch_cell", None)
    workers = config.num_workers
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=config.drop_last and train,
        persistent_workers=config.persistent_workers and workers > 0,
        prefetch_factor=config.prefetch_factor if workers > 0 else None,
        worker_init_fn=_seed_worker if workers > 0 else None,
        # Its own generator: creating an iterator then never draws from the global RNG (dropout's).
        generator=torch.Generator().manual_seed(config.seed),
    )
    return loader, sampler
