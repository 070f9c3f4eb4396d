"""What a run records as it trains, by ``train.log``: ``metrics.csv`` (``csv``, the default),
``curves.png`` (always) and TensorBoard event files (``tensorboard``, see :mod:`.tensorboard_log`).

The loop calls :meth:`Records.batch` after every batch and :meth:`Records.epoch` after every epoch
(with the whole history, resumed epochs included, so metrics.csv and curves.png always show the
run from its first epoch); curves.png is redrawn after an epoch unless that would make drawing
more than a tenth of the run's time (tiny, fast epochs), and always when the run ends. Only the
writer (rank 0 under DDP) records; on the other ranks every call does nothing. A failed write
stops the run like any of its files (see ``RunDir.writing``); a picture that cannot be drawn for
another reason is warned about once and training goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from torchspec.fileio import WriteError
from torchspec.training.config import TrainConfig
from torchspec.training.console import write_metrics
from torchspec.training.curves import CURVES_NAME, write_curves
from torchspec.training.rundir import RunDir
from torchspec.training.tensorboard_log import TensorBoardLog

__all__ = ["DRAW_SHARE_MAX", "Records"]

DRAW_SHARE_MAX = 10  # curves.png is redrawn after an epoch once 10x the last drawing's time has passed


class Records:
    """metrics.csv, curves.png and TensorBoard for one run, from optimizer step ``step`` on."""

    def __init__(
        self,
        run: RunDir,
        config: TrainConfig,
        main: bool,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        step: int,
        train: Mapping[str, Any],
        warn: Callable[[str], None],
    ) -> None:
        self.run, self.main, self.model, self.optimizer, self.warn = run, main, model, optimizer, warn
        self.csv = main and "csv" in config.log
        self.curves = main
        self.pending: Sequence[Mapping[str, Any]] | None = None  # a history not drawn yet
        self.drawn_at, self.draw_cost = -math.inf, 0.0  # time.monotonic() of the last drawing, seconds
        self.last_step = step
        self.tensorboard: TensorBoardLog | None = None
        if main and "tensorboard" in config.log:
            with run.writing(run.path):
                self.tensorboard = TensorBoardLog(run.path, step, warn)
            results = ["epoch/train_loss", "epoch/val_loss", f"epoch/{config.monitor}"]
            self.tensorboard.settings(train, list(dict.fromkeys(results)))

    def batch(self, step: int, loss: float, x: torch.Tensor) -> None:
        """After a batch (``x``: its inputs, on the device); ``step``: optimizer steps done so far."""
        if self.tensorboard is None:
            return
        self.tensorboard.graph(self.model, x)
        stepped, self.last_step = step > self.last_step, step
        self.tensorboard.step(step, loss, float(self.optimizer.param_groups[0]["lr"]), stepped)

    def epoch(self, history: Sequence[Mapping[str, Any]]) -> None:
        """After an epoch: metrics.csv and curves.png rewritten whole, the epoch's TensorBoard scalars."""
        if self.csv:
            with self.run.writing(self.run.file("metrics.csv")):
                write_metrics(self.run.file("metrics.csv"), list(history))  # type: ignore[arg-type]
        # Drawing takes a fraction of a second: after every epoch unless the epochs are shorter than
        # DRAW_SHARE_MAX times that (then as often as that allows), and at the end (close).
        self.pending = history
        if self.curves and time.monotonic() - self.drawn_at >= self.draw_cost * DRAW_SHARE_MAX:
            self._draw()
        if self.tensorboard is not None and history:
            self.tensorboard.epoch(history[-1])

    def _draw(self) -> None:
        started, history, self.pending = time.monotonic(), self.pending, None
        with self.run.writing(self.run.file(CURVES_NAME)):
            try:
                write_curves(self.run.path, history or [])
            except WriteError:
                raise
            except Exception as exc:  # a picture that cannot be drawn never stops the training
                self.curves = False
                where = self.run.file(CURVES_NAME)
                self.warn(f"warning: {where} could not be drawn ({exc}); training goes on")
        self.drawn_at = time.monotonic()
        self.draw_cost = self.drawn_at - started

    def close(self) -> None:
        """At the end of the run (or its interruption): the last epochs' curves if not drawn yet
        (a failure now is a warning: the run's own outcome or error comes first), TensorBoard."""
        if self.curves and self.pending:
            try:
                self._draw()
            except Exception as exc:
                self.warn(f"warning: {exc}")
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
