"""Data for training: the sources (:mod:`.sources`, :mod:`.usercode`) as train and validation
datasets, and the loaders.

Every source becomes a map-style ``Dataset`` of ``(input, target)`` pairs. The loaders use
:class:`EpochSampler`, whose order for an epoch depends only on ``(seed, epoch)``, so a run resumed
mid-epoch can skip exactly the batches already done and see the same data as an uninterrupted one.
Every failure is a SpecError at the line of the source in the spec (or at its ``--set`` argument),
or, for a mistake in the user's own dataset code, at their file and line.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset

from torchspec.errors import Problem, SpecError
from torchspec.source import Document, Path
from torchspec.training import config as C
from torchspec.training.folder_config import FolderSource
from torchspec.training.sources import ArrayDataset, SourceError, builtin_source, synthetic_motion
from torchspec.training.usercode import UserDataError, load_python, refuse_without_consent

__all__ = ["Data", "EpochSampler", "load_data", "make_loader", "synthetic_motion"]


@dataclass
class Data:
    train: Dataset[Any]
    val: Dataset[Any] | None
    classes: int | None  # number of classes when the source knows it
    description: str


def _warn(message: str) -> None:
    sys.stderr.write(message + "\n")


def load_data(
    config: C.TrainConfig,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    *,
    file: str,
    doc: Document | None = None,
    base_dir: str | None = None,
    allow_code: bool = False,
    say: Any = None,
    test: bool = False,
    ids: tuple[int, int] | None = None,
) -> Data:
    """Build the train and validation datasets; failures are SpecErrors at train.data's line.

    ``doc`` is the spec as resolved (with the paths ``--set`` gave: errors about them name the
    ``--set`` argument instead of the file's line); without it ``file`` is read again for positions.
    ``allow_code``: the user's consent (``--allow-code``) to import a ``python`` source's module.
    ``say`` prints a folder source's warnings (skipped files); stderr by default.
    ``test``: load ``train.test`` alone (as ``train``), if the spec has one.
    ``ids``: the ``[low, high)`` of an int64 (token id) input (``ShapeReport.id_range``).
    """
    where = _locator(file, doc)

    def located(key: str, cfg: Any) -> tuple[Dataset[Any], int | None]:
        path: Path = ("train", key)
        try:
            if isinstance(cfg, C.PythonData):
                at = where((*path, "target"), "")
                if not allow_code:
                    raise SpecError([refuse_without_consent(cfg.target, at)])
                return load_python(cfg.target, cfg.args, at, base_dir), None
            if isinstance(cfg, FolderSource):  # video-folder, frame-folder, image-folder
                from torchspec.training.folders import folder_source

                return folder_source(cfg, input_shape, config.seed, base_dir, say or _warn)
            return builtin_source(cfg, input_shape, output_shape, config.seed, base_dir, ids)
        except UserDataError as exc:
            raise SpecError([exc.problem()]) from None
        except SourceError as exc:
            target = (*path, exc.key) if exc.key else path
            raise SpecError([where(target, f"train.{key} ({cfg.source}): {exc}", exc.hints)]) from None
        except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise SpecError([where(path, f"train.{key} ({cfg.source}): {exc}")]) from None

    if test and config.test is not None:  # eval on the test set: that source alone, as it is
        dataset, classes = located("test", config.test)
        dataset = dataset.for_eval() if hasattr(dataset, "for_eval") else dataset
        if classes is None:
            _check_labels(config, output_shape, dataset, "train.test", where)
        return Data(dataset, None, classes, f"{config.test.source}: {len(dataset)} test samples")  # type: ignore[arg-type]
    train, classes = located("data", config.data)
    val: Dataset[Any] | None = None
    if classes is None:  # sources that know their classes are checked against the model by the loop
        _check_labels(config, output_shape, train, "train.data", where)
    if config.val is not None:
        val = located("val", config.val)[0]
        val = val.for_eval() if hasattr(val, "for_eval") else val  # folder sources: centred clips
        if classes is None:
            _check_labels(config, output_shape, val, "train.val", where)
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
            raise SpecError([where(("train", "drop_last"), message, hints)])
        message = (
            f"no training steps: train.data ({config.data.source}) gives {split}"
            f" (batch_size {config.batch_size})"
        )
        hints = ["give train.data more samples (at least 2 with a validation split)"]
        raise SpecError([where(("train", "data"), message, hints)])
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
    config: C.TrainConfig, output_shape: Sequence[int], dataset: Dataset[Any], key: str, where: Any
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
        raise SpecError([where(("train", "loss"), found[0], found[1])])


def _locator(file: str, doc: Document | None) -> Any:
    """``where(path, message, hints) -> Problem``: at ``path`` in the spec (or its --set argument)
    when the spec's positions are known, else at the file."""
    if doc is None and os.path.isfile(file):
        from torchspec.source import load_document

        try:
            doc = load_document(file)
        except SpecError:
            doc = None

    def where(path: Path, message: str, hints: Sequence[str] = ()) -> Problem:
        if doc is not None and (doc.text or doc.value_pos or doc.override_of(path)):
            return doc.problem(path, message, hints)
        return Problem(file, 0, 0, message, tuple(hints))

    return where


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


class _Loader(DataLoader[Any]):
    """A DataLoader whose mistakes in the user's dataset (raised in this process or in a worker)
    end as located SpecErrors, not tracebacks."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except UserDataError as exc:
                raise SpecError([exc.problem()]) from None
            yield batch


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
    loader = _Loader(
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
