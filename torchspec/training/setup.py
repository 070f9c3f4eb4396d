"""The named steps before :func:`torchspec.training.loop.train`'s loop, in the order it calls them:
check the run against the model and the machine, open the run folder, seed, load the batches, build
the model and what trains it; and the Ctrl-C / SIGTERM handlers around the loop.

Each step raises its located SpecError before anything later happens: no data is loaded for a run
whose settings are wrong, no weights are built for data that does not fit the model.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torchspec.builder import build_from_report
from torchspec.errors import SpecError, format_problems
from torchspec.infer import ShapeReport, infer_shapes
from torchspec.memory import check_fits, run_estimate
from torchspec.spec import Spec
from torchspec.training.config import TrainConfig
from torchspec.training.console import Reporter
from torchspec.training.data import EpochSampler, load_data, make_loader
from torchspec.training.finetune import freeze, optimizer_groups
from torchspec.training.objects import make_loss, make_optimizer, make_scheduler
from torchspec.training.parallel import Parallel
from torchspec.training.parts import pick_device
from torchspec.training.paths import run_folder, spec_folder
from torchspec.training.resolve import resolve_spec
from torchspec.training.run_checks import run_problems
from torchspec.training.rundir import RunDir, open_run_dir
from torchspec.training.speed import SpeedPlan, plan_speed
from torchspec.training.stepper import Ema, batch_sizes

__all__ = [
    "Batches",
    "Parts",
    "build_parts",
    "interrupts",
    "load_batches",
    "open_folder",
    "prepare",
    "seed_all",
]


def prepare(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    overrides: Iterable[str],
    variant: str | None,
    out: Reporter,
) -> tuple[Spec, TrainConfig, torch.device, ShapeReport, SpeedPlan]:
    """The spec with its train section, resolved and checked: every config error, located, before
    any data; then the speed plan and the analytic memory need against the device."""
    spec, config = resolve_spec(spec, overrides, variant=variant)
    device = pick_device(config.device)
    report = infer_shapes(spec, batch=config.batch_size)  # per-rank batch under ddp
    found = run_problems(spec.document, report, config)  # the loss and schedule against the run
    if any(p.severity == "error" for p in found):
        raise SpecError([p for p in found if p.severity == "error"])
    if found:
        out.warn(format_problems(found))
    plan = plan_speed(spec, config, report, device)  # precision/channels_last vs. device and model
    check_fits(  # before any data or weights: the analytic size against the free memory
        run_estimate(report, "train", config.optimizer, plan.precision),
        str(device),
        what=f"training with batch_size {config.batch_size}",
        where=spec.document.file,
        hints=(
            "lower train.batch_size (--set train.batch_size=N)",
            "or use a device with more memory (--device)",
        ),
    )
    return spec, config, device, report, plan


def open_folder(
    spec: Spec, config: TrainConfig, par: Parallel, resume: str | None, overwrite: bool, out: Reporter
) -> RunDir:
    """The folder before any data or model: writable, locked by rank 0 (the writer), no other run
    there unless resumed or --overwrite; the other ranks get it unlocked, once it is ready."""
    output_dir = run_folder(config.output_dir, spec.name, spec_folder(spec.document.file))
    refused: SpecError | None = None
    run: RunDir | None = None
    if par.main:
        try:
            run = open_run_dir(output_dir, resume=resume, overwrite=overwrite, say=out.say)
        except SpecError as err:
            refused = err
    if par.any(refused is not None)[0]:  # every rank stops, none with a gloo traceback
        raise refused or SpecError.single(output_dir, "rank 0 refused this output_dir (its error says why)")
    return run or RunDir(output_dir)


def seed_all(seed: int) -> None:
    """Python's, numpy's and torch's generators (the model's init and the data draw from them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Batches:
    """The run's loaders and the epoch's shape in batches (this rank's share under ddp)."""

    train: torch.utils.data.DataLoader[Any]
    sampler: EpochSampler  # the epoch's order; set_epoch(epoch, start) skips what a resume has done
    val: torch.utils.data.DataLoader[Any] | None
    sizes: list[int]  # this rank's batch sizes in an epoch; accumulate_steps of them make one step
    steps_per_epoch: int  # optimizer steps


def load_batches(
    spec: Spec,
    config: TrainConfig,
    report: ShapeReport,
    plan: SpeedPlan,
    par: Parallel,
    device: torch.device,
    allow_code: bool,
    out: Reporter,
) -> Batches:
    """The data of ``train.data`` (and ``val``), checked against the model's outputs, as loaders."""
    file = spec.document.file
    data = load_data(
        config,
        spec.input_shape,
        report.output[1:],
        file=file,
        doc=spec.document,
        base_dir=spec_folder(file),  # relative data paths start here (see .paths)
        allow_code=allow_code,
        ids=report.id_range,
        say=out.warn,
    )
    shared = f" x {par.world_size} ranks" if par.distributed else ""
    out.say(f"data: {data.description}; device: {device}{shared}; {plan.describe()}")
    n_out = report.output[-1] if len(report.output) == 2 else None
    if (
        data.classes
        and n_out is not None
        and config.loss.type in ("CrossEntropyLoss", "NLLLoss")
        and n_out < data.classes
    ):
        message = f"the data has {data.classes} classes but the model outputs {n_out} values per sample"
        raise SpecError([spec.document.problem(("layers", len(spec.layers) - 1), message)])
    pin = plan.pin_memory  # pinned host batches let the .to(device, non_blocking=True) copies overlap
    # Under ddp each rank iterates over its share (ceil(samples / world_size)) of every epoch.
    train_loader, sampler = make_loader(
        data.train, config, train=True, pin_memory=pin, rank=par.rank, world_size=par.world_size
    )
    # Validation: every rank runs the whole set (same weights, same result: no reduction needed).
    val_loader = (
        make_loader(data.val, config, train=False, pin_memory=pin)[0] if data.val is not None else None
    )
    sizes = batch_sizes(len(sampler), config.batch_size, config.drop_last)
    steps_per_epoch = -(-len(sizes) // config.accumulate_steps)
    return Batches(train_loader, sampler, val_loader, sizes, steps_per_epoch)


@dataclass
class Parts:
    """The model and what trains it. ``model`` is the plain module whose state_dict is saved."""

    model: torch.nn.Module
    frozen: list[str]  # the frozen parameters' names (train.freeze)
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # None without train.scheduler
    interval: str  # when the scheduler steps: epoch | step | metric
    scaler: torch.amp.GradScaler  # enabled for fp16 only: loss scaling
    ema: Ema | None  # the weights' moving average (train.ema)


def build_parts(
    spec: Spec, config: TrainConfig, report: ShapeReport, plan: SpeedPlan, device: torch.device, steps: int
) -> Parts:
    """The model (seeded by train.seed) on ``device``, its loss, optimizer, scheduler (``steps``
    optimizer steps an epoch), GradScaler and EMA."""
    model = build_from_report(report, seed=config.seed).to(device)
    frozen = freeze(model, config.freeze, spec.document) if config.freeze else []
    loss_fn = make_loss(config.loss)
    optimizer = make_optimizer(config.optimizer, optimizer_groups(model, config, spec.document))
    scheduler, interval = None, "epoch"
    if config.scheduler is not None:
        scheduler, interval = make_scheduler(
            config.scheduler, optimizer, epochs=config.epochs, steps_per_epoch=steps, monitor=config.monitor
        )
    scaler = torch.amp.GradScaler(device.type, enabled=plan.scaler)
    ema = Ema(model, config.ema.decay) if config.ema is not None else None
    return Parts(model, frozen, loss_fn, optimizer, scheduler, interval, scaler, ema)


@contextmanager
def interrupts(*cleanups: Callable[[], None]) -> Iterator[list[int]]:
    """Ctrl-C / SIGTERM append their signal number to the yielded list instead of stopping the
    process: the loop finishes its step, checkpoints and exits 130 / 143. On the way out, however
    the loop ends: ``cleanups`` in order, then the previous handlers back."""
    stop: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda signum, frame: stop.append(signum))
    try:
        yield stop
    finally:
        try:
            for cleanup in cleanups:
                cleanup()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
