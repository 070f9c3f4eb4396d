"""The run's bookkeeping around the loop: the resume settings check, the command that resumes a
run, the done line (which file holds which weights), and the best epoch's weights."""

from __future__ import annotations

import os
import shlex
from typing import Any

import torch

from torchspec.errors import Problem, SpecError
from torchspec.spec import Spec
from torchspec.training.checkpoint import load_checkpoint, resume_changes, spec_of
from torchspec.training.config import TrainConfig
from torchspec.training.stepper import early_stop

__all__ = ["best_weights", "check_resume_settings", "done_line", "finished", "resume_command"]


def check_resume_settings(ckpt: dict[str, Any], path: str, train: dict[str, Any], world_size: int) -> None:
    """The settings an exact resume depends on must be the checkpoint's (see
    checkpoint.RESUME_FREE_KEYS); checked before any state is loaded, so a mismatch is one clear
    error listing the changes, never a torch crash."""
    saved_train = spec_of(ckpt, path).get("train", {})
    if not isinstance(saved_train, dict):
        raise SpecError.single(path, "not a valid torchspec checkpoint: spec.train: expected a mapping")
    changes = resume_changes(saved_train, train)
    saved_world = ckpt.get("world_size", world_size)  # absent from older checkpoints
    if saved_world != world_size:  # ddp: the ranks' shares of each epoch would differ
        changes.append(f"world size (ddp processes): {saved_world} → {world_size}")
    if changes:
        message = (
            f"the checkpoint was written with other training settings ({len(changes)} differ,"
            " checkpoint → now):\n" + "\n".join(f"    {change}" for change in changes)
        )
        hints = [
            "an exact resume needs the settings the run started with",
            "resume with the settings the run started with, or start a new run"
            " (another output_dir, or without --resume)",
        ]
        raise SpecError([Problem(path, 0, 0, message, tuple(hints))])


def best_weights(best_path: str, key: str) -> dict[str, torch.Tensor] | None:
    """The best epoch's weights (``key``: model or ema) from best.ckpt, verified as any checkpoint;
    None when there is none."""
    return load_checkpoint(best_path)[key] if os.path.exists(best_path) else None  # type: ignore[no-any-return]


def done_line(
    history: list[dict[str, Any]], step: int, monitor: str, best: float | None, output_dir: str
) -> str:
    """``done: ...`` with the last epoch's metrics and which file holds which weights."""
    final = history[-1] if history else {}
    parts = [f"done: {len(history)} epochs, {step} steps"]
    if final.get("val_accuracy") is not None:
        parts.append(f"val accuracy {100 * final['val_accuracy']:.1f}%")
    if final.get("val_loss") is not None:
        parts.append(f"val loss {final['val_loss']:.4f}")
    best_epoch = next((row["epoch"] for row in history if row.get(monitor) == best), None)
    if best_epoch is not None:
        parts.append(
            f"model.safetensors: best {monitor} {best:.4g} (epoch {best_epoch}), "
            f"last.ckpt: last epoch ({final['epoch']})"
        )
    names = ["model.safetensors", "best.ckpt", "last.ckpt", "metrics.csv", "curves.png", "spec.yaml"]
    names.append("tensorboard/")
    written = ", ".join(n for n in names if os.path.exists(os.path.join(output_dir, n)))
    return ", ".join(parts) + f"; outputs in {output_dir}/ ({written})"


def resume_command(spec: Spec, allow_code: bool, *more: str) -> str:
    """The command that resumes this very run: the same file, --set arguments (then ``more``),
    variant and consent."""
    file = spec.document.file
    args = [*dict.fromkeys(spec.document.overrides.values()), *more]
    sets = [f"--set {shlex.quote(arg)}" for arg in args]
    if spec.document.variant is not None:
        sets.append(f"--variant {shlex.quote(spec.document.variant)}")
    sets += ["--allow-code"] if allow_code else []  # the consent the run was started with
    spec_arg = shlex.quote(file) if os.path.isfile(file) else "SPEC"
    return " ".join(["torchspec train", spec_arg, *sets, "--resume auto"])


def finished(
    history: list[dict[str, Any]], epoch: int, batch: int, config: TrainConfig, monitor: str, spec: Spec,
    allow_code: bool, path: str,
) -> str | None:  # fmt: skip
    """For a resumed run with nothing left to do (every epoch done, or stopped early): what to say,
    with the command that trains longer; None when there is work left."""
    early = early_stop(history, monitor, config.patience, config.min_delta) if not batch else None
    if epoch < config.epochs and not early:
        return None
    if early:  # patience and epochs may change on a resume (checkpoint.RESUME_FREE_KEYS)
        more = resume_command(spec, allow_code, f"train.patience={(config.patience or 0) + 5}")
        why, how = early, "raise train.patience (or drop it)"
    else:
        more = resume_command(spec, allow_code, f"train.epochs={epoch + config.epochs}")
        why, how = f"{epoch} of {config.epochs} epochs done", "raise train.epochs"
    return f"nothing to do: {path} is a finished run ({why}); to train longer, {how}: {more}"
