"""Where a run stands (:class:`Progress`) and how that is kept: the checkpoints written between
optimizer steps, the resume that restores one exactly, and the weights written at the end.

Resume is exact on the CPU: the model, optimizer, scheduler, GradScaler and every RNG are restored
from the checkpoint, and the data order of an epoch comes only from (seed, epoch), so a resumed
run skips the batches already done and continues bit for bit as if never stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from torchspec.builder import provenance, save_model
from torchspec.errors import SpecError
from torchspec.spec import Spec, load_spec
from torchspec.training.bookkeeping import best_weights, check_resume_settings
from torchspec.training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_state_checked,
    restore,
    save_checkpoint,
    set_rng_state,
)
from torchspec.training.parallel import RANK_WEIGHTS_ENV, Parallel
from torchspec.training.rundir import RunDir
from torchspec.training.setup import Parts

__all__ = ["Checkpoints", "Progress", "new_sums", "resume_from"]


def new_sums() -> dict[str, Any]:
    """An epoch's running totals: loss x samples, samples, correct and counted labels, seconds."""
    return {"loss": 0.0, "samples": 0, "correct": 0, "counted": 0, "seconds": 0.0}


@dataclass
class Progress:
    """The position in the run; a resume overwrites all of it from the checkpoint."""

    epoch: int = 0  # epoch index
    batch: int = 0  # batches done in it
    step: int = 0  # optimizer steps done overall
    best: float | None = None  # the monitored metric's best value so far
    history: list[dict[str, Any]] = field(default_factory=list)  # a row per epoch, as in metrics.csv
    sums: dict[str, Any] = field(default_factory=new_sums)  # this epoch so far (this rank's)


def resume_from(path: str, parts: Parts, train: dict[str, Any], par: Parallel) -> Progress:
    """Restore ``parts`` and every RNG from the checkpoint at ``path``, after checking that the
    resolved ``train`` section (and the world size) is the one it was written with. Under ddp
    every rank loads the same file (a shared output_dir)."""
    ckpt = load_checkpoint(path)
    check_resume_settings(ckpt, path, train, par.world_size)  # before any state loads
    load_state_checked(parts.model, ckpt["model"], path)  # a per-layer diff if the spec changed
    if parts.ema is not None:
        load_state_checked(parts.ema.module, ckpt.get("ema") or {}, path)
    restore(ckpt, path, parts.optimizer, parts.scheduler, parts.scaler)  # checked against this run's first
    sums = dict(ckpt["sums"])
    pos = Progress(ckpt["epoch"], ckpt["batch"], ckpt["step"], ckpt["best"], list(ckpt["history"]), sums)
    set_rng_state(ckpt["rng"])
    if not par.main:  # the checkpoint's sums are all ranks' so far: rank 0 carries them on
        pos.sums = {**new_sums(), "seconds": sums["seconds"]}
    return pos


class Checkpoints:
    """last.ckpt and best.ckpt (rank 0 writes, every rank calls), and model.safetensors at the end."""

    def __init__(self, spec: Spec, resolved: dict[str, Any], parts: Parts, par: Parallel, run: RunDir):
        self.spec, self.resolved, self.parts, self.par, self.run = spec, resolved, parts, par, run
        self.resolved_spec = load_spec(resolved, expand=False)  # spec.to_data(): expanded already
        self.last, self.best = run.file("last.ckpt"), run.file("best.ckpt")

    def snapshot(self, pos: Progress, totals: dict[str, Any]) -> dict[str, Any]:
        """Everything an exact resume needs, as tensors and plain values (weights_only-loadable)."""
        parts = self.parts
        return {
            "spec": self.resolved,  # a mapping (load_spec/build take it), expanded: blocks, repeats, vars
            **provenance(self.spec.document),  # the variant and --set arguments it was expanded with
            "model": parts.model.state_dict(),
            **({"ema": parts.ema.module.state_dict()} if parts.ema is not None else {}),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
            "scaler": parts.scaler.state_dict() if parts.scaler.is_enabled() else None,
            "epoch": pos.epoch,
            "batch": pos.batch,
            "step": pos.step,
            "best": pos.best,
            "history": pos.history,
            "sums": totals,
            "rng": get_rng_state(),
            "world_size": self.par.world_size,  # each rank's share of an epoch depends on it
        }

    def save(self, path: str, pos: Progress) -> None:
        """Every rank calls this: the epoch's sums so far are reduced over ranks, rank 0 writes, and
        the barrier keeps any rank from going on (or reading the file) before it is complete."""
        par, sums = self.par, pos.sums
        totals = {**par.sum({k: v for k, v in sums.items() if k != "seconds"}), "seconds": sums["seconds"]}
        # Never replace a good checkpoint with non-finite weights.
        if par.main and all(bool(torch.isfinite(p).all()) for p in self.parts.model.parameters()):
            with self.run.writing(path, pos.step):  # a failure names the file and the checkpoint kept
                save_checkpoint(path, self.snapshot(pos, totals))
        par.barrier()

    def diverged(self, message: str) -> SpecError:
        """A non-finite loss stops the run; the last good checkpoint (never a NaN one) is kept."""
        good = (
            f"the last good checkpoint, {self.last}, is kept"
            if os.path.exists(self.last)
            else "no checkpoint was written"
        )
        hints = [good, "lower train.optimizer.lr, set train.grad_clip, or check the data for inf/NaN"]
        return SpecError([self.spec.document.problem(("train",), f"{message}; training stopped", hints)])

    def save_final(self) -> None:
        """model.safetensors (rank 0): the best epoch's weights (last.ckpt keeps the last ones)."""
        model, run, par = self.parts.model, self.run, self.par
        if par.main:
            with run.writing(run.file("model.safetensors")):
                save_model(
                    model,
                    self.resolved_spec,
                    run.file("model.safetensors"),
                    made_from=self.spec,
                    state=best_weights(self.best, "ema" if self.parts.ema is not None else "model"),
                )
        if par.distributed and os.environ.get(RANK_WEIGHTS_ENV):  # tests: every rank's final weights
            folder = os.environ[RANK_WEIGHTS_ENV]
            save_model(model, self.resolved_spec, os.path.join(folder, f"rank{par.rank}.safetensors"))
        par.barrier()
