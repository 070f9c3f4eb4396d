"""The training loop: one function, top to bottom, like nanoGPT's train.py.

Resume is exact on the CPU: the model, optimizer, scheduler, GradScaler and every RNG are restored
from the checkpoint, and the data order of an epoch comes only from (seed, epoch), so a resumed
run skips the batches already done and continues bit for bit as if never stopped.

Under ``parallel: ddp`` (torchrun) every rank runs this same function on its share of each epoch;
``par`` (:mod:`.parallel`) reduces metrics and flags across ranks, and rank 0 alone prints and
writes files. The speed options (:mod:`.speed`) are checked before any data is loaded.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import yaml

from torchspec.builder import build_from_report, provenance, save_model
from torchspec.errors import SpecError, format_problems
from torchspec.fileio import write_text
from torchspec.infer import ShapeReport, infer_shapes
from torchspec.memory import check_fits, run_estimate
from torchspec.spec import Spec, load_spec
from torchspec.training.bookkeeping import (
    best_weights,
    check_resume_settings,
    done_line,
    finished,
    resume_command,
)
from torchspec.training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_state_checked,
    restore,
    save_checkpoint,
    set_rng_state,
)
from torchspec.training.config import TrainConfig, higher_is_better
from torchspec.training.console import Reporter
from torchspec.training.data import epoch_seed, load_data, make_loader
from torchspec.training.finetune import apply_init, freeze, optimizer_groups
from torchspec.training.objects import (
    accuracy_counts,
    adapt_target,
    make_loss,
    make_optimizer,
    make_scheduler,
)
from torchspec.training.parallel import RANK_WEIGHTS_ENV, Parallel, start_parallel
from torchspec.training.parts import autocast, check_first_batch, pick_device, resolved_data, validation_row
from torchspec.training.paths import run_folder, spec_folder
from torchspec.training.records import Records
from torchspec.training.resolve import resolve_spec
from torchspec.training.run_checks import run_problems
from torchspec.training.rundir import RunDir, open_run_dir
from torchspec.training.speed import SpeedPlan, apply_speed, plan_speed
from torchspec.training.stepper import Ema, Stepper, batch_sizes, early_stop

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
    # every config error, located, before any data
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
    par, device = start_parallel(spec, config, device, out.say)  # ddp: one process per device
    run: RunDir | None = None
    try:
        # The folder before any data or model: writable, locked by rank 0 (the writer), no other run
        # there unless resumed or --overwrite; the other ranks wait until it is ready.
        output_dir = run_folder(config.output_dir, spec.name, spec_folder(spec.document.file))
        refused: SpecError | None = None
        if par.main:
            try:
                run = open_run_dir(output_dir, resume=resume, overwrite=overwrite, say=out.say)
            except SpecError as err:
                refused = err
        if par.any(refused is not None)[0]:  # every rank stops, none with a gloo traceback
            raise refused or SpecError.single(
                output_dir, "rank 0 refused this output_dir (its error says why)"
            )
        return _train(
            spec,
            config,
            report,
            plan,
            par,
            device,
            resume,
            out if par.main else Reporter(silent=True),
            run or RunDir(output_dir),
            allow_code,
        )
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
    file = spec.document.file
    base_dir = spec_folder(file)  # relative data paths start here (see .paths)
    out.table(report)

    # -- seeds, data, model ----------------------------------------------------------------------
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    data = load_data(
        config,
        spec.input_shape,
        report.output[1:],
        file=file,
        doc=spec.document,
        base_dir=base_dir,
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
    # this rank's batch sizes in an epoch; accumulate_steps of them make one optimizer step
    sizes = batch_sizes(len(sampler), config.batch_size, config.drop_last)
    steps_per_epoch = -(-len(sizes) // config.accumulate_steps)  # optimizer steps
    x_format = plan.input_format(len(report.input))  # channels_last(_3d) batches when asked for

    model = build_from_report(report, seed=config.seed).to(device)
    frozen = freeze(model, config.freeze, spec.document) if config.freeze else []
    loss_fn = make_loss(config.loss)
    optimizer = make_optimizer(config.optimizer, optimizer_groups(model, config, spec.document))
    scheduler, interval = None, "epoch"
    if config.scheduler is not None:
        scheduler, interval = make_scheduler(
            config.scheduler,
            optimizer,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            monitor=config.monitor,
        )
    scaler = torch.amp.GradScaler(device.type, enabled=plan.scaler)  # fp16 only: loss scaling
    ema = Ema(model, config.ema.decay) if config.ema is not None else None  # the weights' average

    # -- output folder: the resolved spec (spec.yaml), so a run is reproducible from its folder alone
    output_dir = run.path  # checked, locked and cleaned by open_run_dir before any data was loaded
    resolved = resolved_data(spec, report, config, output_dir, base_dir)
    resolved_spec = load_spec(resolved, expand=False)  # spec.to_data(): expanded already
    last_path, best_path = os.path.join(output_dir, "last.ckpt"), os.path.join(output_dir, "best.ckpt")
    monitor = config.monitor if val_loader is not None else "train_loss"
    maximize = higher_is_better(monitor)

    # -- position in the run; a resume overwrites all of it from the checkpoint --------------------
    epoch, batch, step = 0, 0, 0  # epoch index, batches done in it, optimizer steps done overall
    history: list[dict[str, Any]] = []
    best: float | None = None
    sums = {"loss": 0.0, "samples": 0, "correct": 0, "counted": 0, "seconds": 0.0}  # this epoch so far
    if resume == "auto" and not os.path.exists(last_path):
        out.say(f"no checkpoint at {last_path}: starting from scratch")
        resume = None
    if resume is not None:  # under ddp every rank loads the same file (a shared output_dir)
        path = last_path if resume == "auto" else resume
        ckpt = load_checkpoint(path)
        check_resume_settings(ckpt, path, resolved["train"], par.world_size)  # before any state loads
        load_state_checked(model, ckpt["model"], path)  # a per-layer diff if the spec changed
        if ema is not None:
            load_state_checked(ema.module, ckpt.get("ema") or {}, path)
        restore(ckpt, path, optimizer, scheduler, scaler)  # checked against this run's objects first
        epoch, batch, step, best = ckpt["epoch"], ckpt["batch"], ckpt["step"], ckpt["best"]
        history, sums = list(ckpt["history"]), dict(ckpt["sums"])
        set_rng_state(ckpt["rng"])
        if not par.main:  # the checkpoint's sums are all ranks' so far: rank 0 carries them on
            sums = {"loss": 0.0, "samples": 0, "correct": 0, "counted": 0, "seconds": sums["seconds"]}
        done = finished(history, epoch, batch, config, monitor, spec, allow_code, path)
        if done is not None:  # every epoch done (or stopped early): nothing trained, nothing rewritten
            out.warn(done)
            return history
        out.say(f"resuming from {path}: epoch {epoch + 1}, batch {batch}, step {step}")
    if resume is None and config.init is not None:  # fine-tuning: a fresh run starts from these weights
        for line in apply_init(model, config, base_dir, spec.document).lines():
            out.say(line)
        if ema is not None:
            ema.module.load_state_dict(model.state_dict())
    if frozen:
        out.say(f"frozen: {len(frozen)} parameter tensors ({', '.join(config.freeze)})")
    if par.main:  # after a resume's settings check: a refused resume leaves the folder as it was
        run.clear_previous(out.say)  # --overwrite: only now, with data and model ready
        with run.writing(run.file("spec.yaml")):
            write_text(run.file("spec.yaml"), yaml.safe_dump(resolved, sort_keys=False))

    # What the loop calls: `model` in channels_last if asked, wrapped (DataParallel / DDP, which
    # broadcasts rank 0's weights), compiled if asked. `model` stays the plain module that is saved.
    net = apply_speed(model, plan, out.say, wrap=lambda module: par.wrap(module, device))
    stepper = Stepper(model, optimizer, scaler, scheduler, interval, config, sizes, ema)
    # validation sees the EMA weights when there are some; under ddp the plain module (no gradient sync)
    judged = ema.module if ema is not None else (model if par.distributed else net)

    def snapshot(totals: dict[str, Any]) -> dict[str, Any]:
        """Everything an exact resume needs, as tensors and plain values (weights_only-loadable)."""
        return {
            "spec": resolved,  # a mapping (load_spec/build take it), expanded: blocks, repeats, vars
            **provenance(spec.document),  # the variant and --set arguments it was expanded with
            "model": model.state_dict(),
            **({"ema": ema.module.state_dict()} if ema is not None else {}),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "epoch": epoch,
            "batch": batch,
            "step": step,
            "best": best,
            "history": history,
            "sums": totals,
            "rng": get_rng_state(),
            "world_size": par.world_size,  # each rank's share of an epoch depends on it
        }

    def checkpoint(path: str) -> None:
        # Every rank calls this: the epoch's sums so far are reduced over ranks, rank 0 writes, and
        # the barrier keeps any rank from going on (or reading the file) before it is complete.
        totals = {**par.sum({k: v for k, v in sums.items() if k != "seconds"}), "seconds": sums["seconds"]}
        # Never replace a good checkpoint with non-finite weights.
        if par.main and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            with run.writing(path, step):  # a failure names the file and the checkpoint kept
                save_checkpoint(path, snapshot(totals))
        par.barrier()

    def diverged(message: str) -> SpecError:
        """A non-finite loss stops the run; the last good checkpoint (never a NaN one) is kept."""
        good = (
            f"the last good checkpoint, {last_path}, is kept"
            if os.path.exists(last_path)
            else "no checkpoint was written"
        )
        hints = [good, "lower train.optimizer.lr, set train.grad_clip, or check the data for inf/NaN"]
        return SpecError([spec.document.problem(("train",), f"{message}; training stopped", hints)])

    # what the run records (rank 0): metrics.csv, curves.png, TensorBoard, as train.log says
    records = Records(run, config, par.main, model, optimizer, step, resolved["train"], out.warn)

    # -- Ctrl-C / SIGTERM: finish the step, checkpoint, exit 130 / 143 -----------------------------
    stop: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda signum, frame: stop.append(signum))

    resuming = resume_command(spec, allow_code)
    checked = False
    try:
        while epoch < config.epochs:
            started = time.perf_counter() - sums["seconds"]
            # Skip the batches already done: this rank's samples seen so far in the epoch (a resume
            # has checked that batch_size, world size and the data are the checkpoint's).
            sampler.set_epoch(epoch, start=batch * config.batch_size)
            train_loader.generator.manual_seed(epoch_seed(config.seed, epoch))  # workers' seeds, per epoch
            model.train()
            out.start_epoch(epoch, config.epochs, steps_per_epoch, batch)
            for x, y in train_loader:  # x: (N, *input), y: (N,) class indices or (N, *output) targets
                if not checked:  # before the first step: the data must match the spec's input
                    check_first_batch(spec, x, y, config.data.source)
                    checked = True
                x = x.to(device, non_blocking=True, memory_format=x_format)
                y = y.to(device, non_blocking=True)
                with autocast(device, config.precision):  # bf16/fp16 forward; fp32 as is
                    output = net(x)  # (N, *output)
                    target = adapt_target(config.loss.type, output, y)
                    loss = loss_fn(output, target)  # mean over this rank's N: DDP averages over ranks
                loss_value = float(loss.detach())
                # Every rank must agree before DDP's backward (a lone rank raising would hang the rest).
                bad, stopping = par.any(not math.isfinite(loss_value), bool(stop))
                if bad:
                    where = f"step {step + 1} (epoch {epoch + 1}, batch {batch + 1})"
                    shown = loss_value if not math.isfinite(loss_value) else "not finite on another rank"
                    raise diverged(f"the loss is {shown} at {where}")
                stepped = stepper.backward(loss, batch, step)  # accumulates; steps at a group's end
                step, batch = step + stepped, batch + 1
                sums["loss"] += loss_value * x.shape[0]
                sums["samples"] += x.shape[0]
                counts = accuracy_counts(config.loss.type, output.detach(), target)
                if counts is not None:
                    sums["correct"] += counts[0]
                    sums["counted"] += counts[1]
                elapsed = time.perf_counter() - started
                acc = sums["correct"] / sums["counted"] if sums["counted"] else None
                out.advance(loss_value, acc, sums["samples"] / max(elapsed, 1e-9))
                records.batch(step, loss_value, x)  # TensorBoard: per-step scalars, the graph once
                sums["seconds"] = elapsed
                if not stepped:  # checkpoints and interrupts only between optimizer steps
                    continue
                if stopping or (config.checkpoint_every and step % config.checkpoint_every == 0):
                    checkpoint(last_path)  # mid-epoch: a kill now loses at most checkpoint_every steps
                if stopping:
                    out.stop()
                    code = 130 if not stop or stop[0] == signal.SIGINT else 143
                    raise Interrupted(
                        code,
                        f"interrupted at step {step} (epoch {epoch + 1}); checkpoint written to {last_path}\n"
                        f"resume with: {resuming}",
                    )

            # -- end of epoch: reduce over ranks, validate, schedule, record, checkpoint -----------
            totals = par.sum({k: v for k, v in sums.items() if k != "seconds"})  # all ranks' samples
            train_loss = totals["loss"] / max(totals["samples"], 1)
            train_acc = totals["correct"] / totals["counted"] if totals["counted"] else None
            val: dict[str, Any] = {"val_loss": None, "val_accuracy": None}
            if val_loader is not None:
                val = validation_row(judged, val_loader, loss_fn, config, device, x_format)
            if val["val_loss"] is not None and not math.isfinite(val["val_loss"]):  # the same on every rank
                raise diverged(
                    f"the validation loss is {val['val_loss']} after epoch {epoch + 1} (step {step})"
                )
            value = {"train_loss": train_loss, **val}.get(monitor)
            if scheduler is not None and interval == "metric":
                scheduler.step(value if value is not None else train_loss)
            elif scheduler is not None and interval == "epoch":
                scheduler.step()
            row = {
                "epoch": epoch + 1,
                "step": step,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                **val,  # val_loss, val_accuracy, then the task's other metrics (.metrics)
                "seconds": time.perf_counter() - started,
            }
            history.append(row)
            improved = value is not None and (best is None or (value > best if maximize else value < best))
            if improved:
                best = value
            epoch, batch = epoch + 1, 0
            sums = {"loss": 0.0, "samples": 0, "correct": 0, "counted": 0, "seconds": 0.0}
            records.epoch(history)  # metrics.csv, curves.png, TensorBoard (rank 0)
            checkpoint(last_path)
            if improved:
                checkpoint(best_path)
            out.end_epoch(row, config.epochs, improved)
            early = early_stop(history, monitor, config.patience, config.min_delta)
            if early:
                out.warn(early)
                break
    finally:
        out.stop()
        records.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    if par.main:  # model.safetensors: the best epoch's weights (last.ckpt keeps the last ones)
        with run.writing(run.file("model.safetensors")):
            save_model(
                model,
                resolved_spec,
                run.file("model.safetensors"),
                made_from=spec,
                state=best_weights(best_path, "ema" if ema is not None else "model"),
            )
    if par.distributed and os.environ.get(RANK_WEIGHTS_ENV):  # tests: every rank's final weights
        save_model(
            model, resolved_spec, os.path.join(os.environ[RANK_WEIGHTS_ENV], f"rank{par.rank}.safetensors")
        )
    par.barrier()
    out.warn(done_line(history, step, monitor, best, output_dir))
    return history
