"""The training loop: one function, top to bottom, like nanoGPT's train.py.

The steps before the loop are named functions of :mod:`.setup` (check, folder, seeds, data, model);
where the run stands and how it is checkpointed and resumed (exactly: every RNG, the data order
from (seed, epoch) alone) is :mod:`.progress`; the optimizer step with accumulation, clipping,
warmup and EMA is :mod:`.stepper`.

Under ``parallel: ddp`` (torchrun) every rank runs this same function on its share of each epoch;
``par`` (:mod:`.parallel`) reduces metrics and flags across ranks, and rank 0 alone prints and
writes files. The speed options (:mod:`.speed`) are checked before any data is loaded.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import yaml

from torchspec.fileio import write_text
from torchspec.infer import ShapeReport
from torchspec.spec import Spec
from torchspec.training.bookkeeping import done_line, finished, resume_command
from torchspec.training.config import TrainConfig, higher_is_better
from torchspec.training.console import Reporter
from torchspec.training.data import epoch_seed
from torchspec.training.finetune import apply_init
from torchspec.training.objects import accuracy_counts, adapt_target
from torchspec.training.parallel import Parallel, start_parallel
from torchspec.training.parts import autocast, check_first_batch, resolved_data, validation_row
from torchspec.training.paths import spec_folder
from torchspec.training.progress import Checkpoints, Progress, new_sums, resume_from
from torchspec.training.records import Records
from torchspec.training.rundir import RunDir
from torchspec.training.setup import build_parts, interrupts, load_batches, open_folder, prepare, seed_all
from torchspec.training.speed import SpeedPlan, apply_speed
from torchspec.training.stepper import Stepper, early_stop

__all__ = ["Interrupted", "train"]


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the run after a checkpoint; ``code`` is 130 or 143."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def train(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    overrides: Iterable[str] = (),
    *,
    resume: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    allow_code: bool = False,
    variant: str | None = None,
) -> list[dict[str, Any]]:
    """Train a spec (path, mapping or Spec) as its ``train`` section says; returns the metrics history.

    ``overrides`` are ``"dotted.key=value"`` strings (``--set``); ``resume`` is a checkpoint path or
    ``"auto"`` (``output_dir/last.ckpt`` if it exists); ``overwrite`` replaces a finished run in
    ``output_dir`` (see :mod:`.rundir`); ``variant`` picks one of the spec's variants. One dict per
    epoch, as in metrics.csv.
    Under ``parallel: ddp`` it joins torchrun's process group and leaves it when done.
    ``allow_code``: consent to import the module a ``python`` data source names (``--allow-code``).
    """
    out = reporter or Reporter(quiet)
    spec, config, device, report, plan = prepare(spec, overrides, variant, out)  # every config error
    par, device = start_parallel(spec, config, device, out.say)  # ddp: one process per device
    run: RunDir | None = None
    try:
        run = open_folder(spec, config, par, resume, overwrite, out)  # before any data or model
        quiet_rank = out if par.main else Reporter(silent=True)
        return _train(spec, config, report, plan, par, device, resume, quiet_rank, run, allow_code)
    finally:
        if run is not None:
            run.release()
        par.close()


def _train(
    spec: Spec,
    config: TrainConfig,
    report: ShapeReport,
    plan: SpeedPlan,
    par: Parallel,
    device: torch.device,
    resume: str | None,
    out: Reporter,
    run: RunDir,
    allow_code: bool,
) -> list[dict[str, Any]]:
    """The loop of :func:`train`, top to bottom; ``out`` prints nothing on DDP ranks other than 0."""
    out.table(report)
    seed_all(config.seed)
    batches = load_batches(spec, config, report, plan, par, device, allow_code, out)
    x_format = plan.input_format(len(report.input))  # channels_last(_3d) batches when asked for
    parts = build_parts(spec, config, report, plan, device, batches.steps_per_epoch)
    model, optimizer, loss_fn = parts.model, parts.optimizer, parts.loss_fn

    # The resolved spec (spec.yaml), so a run is reproducible from its folder alone. The folder was
    # checked, locked and cleaned by open_folder before any data was loaded.
    base_dir = spec_folder(spec.document.file)
    resolved = resolved_data(spec, report, config, run.path, base_dir)
    ckpts = Checkpoints(spec, resolved, parts, par, run)
    monitor = config.monitor if batches.val is not None else "train_loss"
    maximize = higher_is_better(monitor)

    pos = Progress()  # epoch 0, batch 0, step 0; a resume takes the checkpoint's
    if resume == "auto" and not os.path.exists(ckpts.last):
        out.say(f"no checkpoint at {ckpts.last}: starting from scratch")
        resume = None
    if resume is not None:
        path = ckpts.last if resume == "auto" else resume
        pos = resume_from(path, parts, resolved["train"], par)
        done = finished(pos.history, pos.epoch, pos.batch, config, monitor, spec, allow_code, path)
        if done is not None:  # every epoch done (or stopped early): nothing trained, nothing rewritten
            out.warn(done)
            return pos.history
        out.say(f"resuming from {path}: epoch {pos.epoch + 1}, batch {pos.batch}, step {pos.step}")
    if resume is None and config.init is not None:  # fine-tuning: a fresh run starts from these weights
        for line in apply_init(model, config, base_dir, spec.document).lines():
            out.say(line)
        if parts.ema is not None:
            parts.ema.module.load_state_dict(model.state_dict())
    if parts.frozen:
        out.say(f"frozen: {len(parts.frozen)} parameter tensors ({', '.join(config.freeze)})")
    if par.main:  # after a resume's settings check: a refused resume leaves the folder as it was
        run.clear_previous(out.say)  # --overwrite: only now, with data and model ready
        with run.writing(run.file("spec.yaml")):
            write_text(run.file("spec.yaml"), yaml.safe_dump(resolved, sort_keys=False))

    # What the loop calls: `model` in channels_last if asked, wrapped (DataParallel / DDP, which
    # broadcasts rank 0's weights), compiled if asked. `model` stays the plain module that is saved.
    net = apply_speed(model, plan, out.say, wrap=lambda module: par.wrap(module, device))
    stepper = Stepper(
        model, optimizer, parts.scaler, parts.scheduler, parts.interval, config, batches.sizes, parts.ema
    )
    # validation sees the EMA weights when there are some; under ddp the plain module (no gradient sync)
    judged = parts.ema.module if parts.ema is not None else (model if par.distributed else net)
    # what the run records (rank 0): metrics.csv, curves.png, TensorBoard, as train.log says
    records = Records(run, config, par.main, model, optimizer, pos.step, resolved["train"], out.warn)
    resuming = resume_command(spec, allow_code)
    checked = False

    # Ctrl-C / SIGTERM: finish the step, checkpoint, exit 130 / 143; the display and records close
    with interrupts(out.stop, records.close) as stop:
        while pos.epoch < config.epochs:
            sums = pos.sums
            started = time.perf_counter() - sums["seconds"]
            # Skip the batches already done: this rank's samples seen so far in the epoch (a resume
            # has checked that batch_size, world size and the data are the checkpoint's).
            batches.sampler.set_epoch(pos.epoch, start=pos.batch * config.batch_size)
            batches.train.generator.manual_seed(epoch_seed(config.seed, pos.epoch))  # workers' seeds
            model.train()
            out.start_epoch(pos.epoch, config.epochs, batches.steps_per_epoch, pos.batch)
            for x, y in batches.train:  # x: (N, *input), y: (N,) class indices or (N, *output) targets
                if not checked:  # before the first step: the data must match the spec's input
                    check_first_batch(spec, x, y, config.data.source)
                    checked = True
                x = x.to(device, non_blocking=True, memory_format=x_format)
                y = y.to(device, non_blocking=True)
                # ddp: a group's batches before its last add up their gradients without an all-reduce
                with par.gradient_sync(stepper.ends_group(pos.batch)):
                    with autocast(device, config.precision):  # bf16/fp16 forward; fp32 as is
                        output = net(x)  # (N, *output)
                        target = adapt_target(config.loss.type, output, y)
                        loss = loss_fn(output, target)  # mean over this rank's N: DDP averages ranks
                    loss_value = float(loss.detach())
                    # Every rank must agree before DDP's backward (a lone rank raising would hang).
                    bad, stopping = par.any(not math.isfinite(loss_value), bool(stop))
                    if bad:
                        where = f"step {pos.step + 1} (epoch {pos.epoch + 1}, batch {pos.batch + 1})"
                        shown = loss_value if not math.isfinite(loss_value) else "not finite on another rank"
                        raise ckpts.diverged(f"the loss is {shown} at {where}")
                    stepped = stepper.backward(loss, pos.batch, pos.step)  # steps at a group's end
                pos.step, pos.batch = pos.step + stepped, pos.batch + 1
                sums["loss"] += loss_value * x.shape[0]
                sums["samples"] += x.shape[0]
                counts = accuracy_counts(config.loss.type, output.detach(), target)
                if counts is not None:
                    sums["correct"] += counts[0]
                    sums["counted"] += counts[1]
                elapsed = time.perf_counter() - started
                acc = sums["correct"] / sums["counted"] if sums["counted"] else None
                out.advance(loss_value, acc, sums["samples"] / max(elapsed, 1e-9))
                records.batch(pos.step, loss_value, x)  # TensorBoard: per-step scalars, the graph once
                sums["seconds"] = elapsed
                if not stepped:  # checkpoints and interrupts only between optimizer steps
                    continue
                if stopping or (config.checkpoint_every and pos.step % config.checkpoint_every == 0):
                    ckpts.save(ckpts.last, pos)  # mid-epoch: a kill loses at most checkpoint_every steps
                if stopping:
                    out.stop()
                    code = 130 if not stop or stop[0] == signal.SIGINT else 143
                    raise Interrupted(
                        code,
                        f"interrupted at step {pos.step} (epoch {pos.epoch + 1}); "
                        f"checkpoint written to {ckpts.last}\nresume with: {resuming}",
                    )

            # -- end of epoch: reduce over ranks, validate, schedule, record, checkpoint -----------
            totals = par.sum({k: v for k, v in sums.items() if k != "seconds"})  # all ranks' samples
            train_loss = totals["loss"] / max(totals["samples"], 1)
            train_acc = totals["correct"] / totals["counted"] if totals["counted"] else None
            val: dict[str, Any] = {"val_loss": None, "val_accuracy": None}
            if batches.val is not None:
                val = validation_row(judged, batches.val, loss_fn, config, device, x_format)
            if val["val_loss"] is not None and not math.isfinite(val["val_loss"]):  # same on every rank
                raise ckpts.diverged(
                    f"the validation loss is {val['val_loss']} after epoch {pos.epoch + 1} (step {pos.step})"
                )
            value = {"train_loss": train_loss, **val}.get(monitor)
            if parts.scheduler is not None and parts.interval == "metric":
                parts.scheduler.step(value if value is not None else train_loss)
            elif parts.scheduler is not None and parts.interval == "epoch":
                parts.scheduler.step()
            row = {
                "epoch": pos.epoch + 1,
                "step": pos.step,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                **val,  # val_loss, val_accuracy, then the task's other metrics (.metrics)
                "seconds": time.perf_counter() - started,
            }
            pos.history.append(row)
            best = pos.best
            improved = value is not None and (best is None or (value > best if maximize else value < best))
            if improved:
                pos.best = value
            pos.epoch, pos.batch, pos.sums = pos.epoch + 1, 0, new_sums()
            records.epoch(pos.history)  # metrics.csv, curves.png, TensorBoard (rank 0)
            ckpts.save(ckpts.last, pos)
            if improved:
                ckpts.save(ckpts.best, pos)
            out.end_epoch(row, config.epochs, improved)
            early = early_stop(pos.history, monitor, config.patience, config.min_delta)
            if early:
                out.warn(early)
                break

    ckpts.save_final()  # model.safetensors: the best epoch's weights; then a barrier
    out.warn(done_line(pos.history, pos.step, monitor, pos.best, run.path))
    return pos.history
