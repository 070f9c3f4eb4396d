"""One optimizer step from the loop's point of view: backward, gradient accumulation, clipping,
warmup, the scheduler's per-step tick and the EMA of the weights; and early stopping.

Gradient accumulation (``accumulate_steps: N``) sums the gradients of N consecutive batches before
one optimizer step. Each batch's loss is weighted by its share of the group's samples (its size
over the group's total, 1 for ``reduction: sum``), so a step sees exactly the gradient of the big
batch of the same samples (the sampler's order does not depend on the batch size): accumulating 3
batches of 4 equals batch_size 12, up to float rounding, for a model without BatchNorm (whose
statistics are per forward pass) or dropout (whose masks are drawn per forward pass). A partial
last group steps at the end of the epoch. ``step`` counts optimizer steps (warmup, OneCycleLR,
``checkpoint_every``); checkpoints and interrupts happen only between steps, where no gradient is
pending, so a resume is exact. Under DDP only a group's last backward all-reduces the gradients
(see :meth:`~torchspec.training.parallel.Parallel.gradient_sync`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from torchspec.training.config import TrainConfig, higher_is_better

__all__ = ["Ema", "Stepper", "batch_sizes", "early_stop"]


def batch_sizes(samples: int, batch_size: int, drop_last: bool) -> list[int]:
    """Sizes of an epoch's batches over ``samples`` (this rank's share)."""
    full, rest = divmod(samples, batch_size)
    return [batch_size] * full + ([rest] if rest and not drop_last else [])


class Ema:
    """An exponential moving average of the weights, as timm's ModelEmaV2: after every optimizer
    step, ``ema = decay * ema + (1 - decay) * weights`` for floating-point parameters and buffers;
    integer buffers (BatchNorm's counter) are copied."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for ema, now in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.is_floating_point():
                ema.lerp_(now.detach(), 1.0 - self.decay)
            else:
                ema.copy_(now)


class Stepper:
    """Backward and, at the end of each accumulation group, the optimizer step with everything around it."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        scheduler: Any,
        interval: str,
        config: TrainConfig,
        sizes: list[int],
        ema: Ema | None,
    ) -> None:
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.scheduler = scheduler if interval == "step" else None
        self.config, self.ema = config, ema
        n = config.accumulate_steps
        self.group_end = [min(b - b % n + n, len(sizes)) for b in range(len(sizes))]  # batch after the group
        if config.loss.reduction == "sum" or n == 1:
            self.scale = [1.0] * len(sizes)
        else:
            totals = {end: sum(sizes[end - ((end - 1) % n) - 1 : end]) for end in set(self.group_end)}
            self.scale = [size / totals[end] for size, end in zip(sizes, self.group_end)]

    def steps_per_epoch(self) -> int:
        return len(set(self.group_end))

    def ends_group(self, batch: int) -> bool:
        """Whether batch ``batch`` of the epoch is its accumulation group's last (the weights step)."""
        return batch + 1 == self.group_end[batch]

    def backward(self, loss: torch.Tensor, batch: int, step: int) -> bool:
        """Backward for batch ``batch`` of the epoch; True if it ended a group and the weights stepped
        (``step``: optimizer steps done so far, for the warmup)."""
        scale = self.scale[batch]
        self.scaler.scale(loss if scale == 1.0 else loss * scale).backward()
        if not self.ends_group(batch):
            return False
        config, optimizer = self.config, self.optimizer
        if config.grad_clip is not None or config.grad_clip_value is not None:
            self.scaler.unscale_(optimizer)
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            if config.grad_clip_value is not None:
                torch.nn.utils.clip_grad_value_(self.model.parameters(), config.grad_clip_value)
        # Linear warmup scales the scheduled lr for this step only; the scheduler never sees it.
        scheduled = [group["lr"] for group in optimizer.param_groups]
        if step < config.warmup_steps:
            for group, lr in zip(optimizer.param_groups, scheduled):
                group["lr"] = lr * (step + 1) / config.warmup_steps
        self.scaler.step(optimizer)
        self.scaler.update()
        for group, lr in zip(optimizer.param_groups, scheduled):
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return True


def early_stop(
    history: list[dict[str, Any]], monitor: str, patience: int | None, min_delta: float
) -> str | None:
    """Why the run stops now: ``patience`` epochs in a row without the monitored metric improving
    by more than ``min_delta`` (from the history alone, so a resume decides the same); else None."""
    if patience is None:
        return None
    maximize = higher_is_better(monitor)
    best, best_epoch, wait = None, 0, 0
    for row in history:
        value = row.get(monitor)
        if value is None:
            continue
        if best is None or (value > best + min_delta if maximize else value < best - min_delta):
            best, best_epoch, wait = value, row["epoch"], 0
        else:
            wait += 1
    if wait < patience:
        return None
    return (
        f"early stop after epoch {history[-1]['epoch']}: {monitor} has not improved by more than "
        f"{min_delta:g} for {wait} epochs (best {best:.4g} at epoch {best_epoch}; patience {patience})"
    )
