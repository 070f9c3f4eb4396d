"""From config to torch objects: the loss, the optimizer, the scheduler; targets and accuracy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from torchspec.training import config as C

__all__ = ["accuracy_counts", "adapt_target", "make_loss", "make_optimizer", "make_scheduler"]


def _kwargs(cfg: Any) -> dict[str, Any]:
    """torch keyword arguments: every field but the tag, lists as tuples (betas)."""
    args = cfg.model_dump(exclude={"type"})
    return {k: tuple(v) if isinstance(v, list) and k == "betas" else v for k, v in args.items()}


def make_loss(cfg: Any) -> nn.Module:
    return getattr(nn, cfg.type)(**_kwargs(cfg))  # type: ignore[no-any-return]


def make_optimizer(cfg: Any, params: Iterable[Any]) -> torch.optim.Optimizer:
    return getattr(torch.optim, cfg.type)(params, **_kwargs(cfg))  # type: ignore[no-any-return]


def make_scheduler(
    cfg: Any, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, monitor: str
) -> tuple[Any, str]:
    """The scheduler and when it steps: ``"epoch"``, ``"step"`` (OneCycleLR) or ``"metric"`` (plateau)."""
    args = _kwargs(cfg)
    sched = torch.optim.lr_scheduler
    if isinstance(cfg, C.OneCycleLR):
        args["total_steps"] = cfg.total_steps or epochs * max(steps_per_epoch, 1)
        return sched.OneCycleLR(optimizer, **args), "step"
    if isinstance(cfg, C.ReduceLROnPlateau):
        args["mode"] = cfg.mode or ("max" if C.higher_is_better(monitor) else "min")
        return sched.ReduceLROnPlateau(optimizer, **args), "metric"
    return getattr(sched, cfg.type)(optimizer, **args), "epoch"


def adapt_target(loss_type: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets as the loss wants them: class indices stay integers; others match the output."""
    if loss_type in C.CLASSIFICATION_LOSSES and not target.is_floating_point():
        return target.long()
    target = target.to(output.dtype)
    if target.shape != output.shape and target.numel() == output.numel():
        target = target.view_as(output)  # [N] labels for a [N, 1] output (BCEWithLogitsLoss)
    return target


def accuracy_counts(loss_type: str, output: torch.Tensor, target: torch.Tensor) -> tuple[int, int] | None:
    """(correct, counted) for classification losses; None for regression."""
    if loss_type in C.CLASSIFICATION_LOSSES and not target.is_floating_point():
        hit = output.argmax(dim=1) == target
        return int(hit.sum()), hit.numel()
    if loss_type == "BCEWithLogitsLoss":
        hit = (output > 0) == (target > 0.5)
        return int(hit.sum()), hit.numel()
    return None
