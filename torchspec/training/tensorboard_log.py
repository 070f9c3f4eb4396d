"""``train.log: [tensorboard]``: TensorBoard event files in ``RUN_DIR/tensorboard/`` (rank 0 only).

What is written, every point at the optimizer step it belongs to (one x axis for everything, so
TensorBoard's ``purge_step`` can work):

* per optimizer step: ``step/loss`` (the mean of the step's batches on rank 0) and ``step/lr``;
* per epoch, at the epoch's last step: ``epoch/<name>`` for every number of the metrics.csv row
  (``epoch/train_loss``, ``epoch/val_loss``, ``epoch/val_accuracy``, ...);
* once: the model graph (traced on one sample of the first batch; a model that cannot be traced is
  warned about once and training goes on) and the train settings as hparams.

A resumed run appends a new event file to the same folder with ``purge_step`` just after the
checkpoint's step: TensorBoard then hides what a killed run logged after that checkpoint (and a
fresh run, with ``purge_step`` 0, hides an earlier run's events in the folder).

Event files are append-only logs written by TensorBoard's own writer, the one kind of file that
does not go through :mod:`torchspec.fileio`; the folder is refused if it is a symlink or a file.
The tensorboard package is checked by ``run_problems`` before anything runs (an error at
``train.log``); an import failure here is the same clear error, never a traceback.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from torchspec.errors import Problem
from torchspec.fileio import WriteError
from torchspec.training.rundir import TENSORBOARD_DIR

__all__ = ["TENSORBOARD_DIR", "TensorBoardLog", "hparams_of"]

INSTALL = 'train.log: tensorboard needs the tensorboard extra: pip install "torchspec[tensorboard]"'


def hparams_of(train: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The train settings flattened to ``optimizer.lr: 0.1`` style scalars (lists as text; the
    paths of data files and the output folder are left out: they are not hyperparameters)."""
    found: dict[str, Any] = {}
    for key, value in train.items():
        name = f"{prefix}{key}"
        if key in ("output_dir", "log", "root", "inputs", "targets", "list_file", "init", "path"):
            continue
        if isinstance(value, Mapping):
            found.update(hparams_of(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            found[name] = value
        elif isinstance(value, (list, tuple)) and value:
            found[name] = str(value)
    return found


class TensorBoardLog:
    """A SummaryWriter on ``run_dir/tensorboard`` starting at ``step``."""

    def __init__(self, run_dir: str, step: int, warn: Callable[[str], None]) -> None:
        folder = os.path.join(run_dir, TENSORBOARD_DIR)
        if os.path.islink(folder) or (os.path.exists(folder) and not os.path.isdir(folder)):
            what = "a symlink" if os.path.islink(folder) else "a file"
            message = f"{folder} is {what}; train.log: tensorboard writes its event files in a folder there"
            raise WriteError([Problem(folder, 0, 0, message, ("remove or rename it",))])
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise WriteError([Problem(run_dir, 0, 0, INSTALL)]) from None
        self.warn = warn
        # TensorBoard hides the folder's earlier events from this step on: what a killed run logged
        # after its checkpoint (``step``), or everything of an earlier run for a fresh one
        self.writer = SummaryWriter(log_dir=folder, purge_step=step + 1 if step else 0)
        self.graphed = False
        self.losses: list[float] = []
        self.end: Any = None  # the hparams session's end, written by close

    def settings(self, train: Mapping[str, Any], metrics: list[str]) -> None:
        """The train settings as hparams, with ``metrics`` (epoch/... tags) as their results."""
        from torch.utils.tensorboard.summary import hparams

        experiment, start, self.end = hparams(hparams_of(train), dict.fromkeys(metrics, 0.0))
        for summary in (experiment, start):
            self._file_writer().add_summary(summary)

    def graph(self, model: torch.nn.Module, x: torch.Tensor) -> None:
        """The model's graph, traced on one sample without touching the run: every module's
        train/eval mode and the RNG states are as they were afterwards (no BatchNorm update, no
        dropout draw), so training stays bit for bit the same with or without TensorBoard."""
        if self.graphed:
            return
        self.graphed = True
        modes = [(module, module.training) for module in model.modules()]
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's warnings about Python control flow
                model.eval()
                self.writer.add_graph(model, x[:1])
        except Exception as exc:  # tracing fails for some models: a missing picture, not a failed run
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            why = f"the model graph could not be traced ({first})"
            self.warn(f"warning: TensorBoard: {why}; training goes on")
        finally:
            for module, training in modes:
                module.training = training

    def step(self, step: int, loss: float, lr: float, stepped: bool) -> None:
        """One batch's loss; at an optimizer step, the mean of the step's batches and the lr."""
        self.losses.append(loss)
        if stepped:
            self.writer.add_scalar("step/loss", sum(self.losses) / len(self.losses), step)
            self.writer.add_scalar("step/lr", lr, step)
            self.losses = []

    def epoch(self, row: Mapping[str, Any]) -> None:
        for key, value in row.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)) and value is not True:
                self.writer.add_scalar(f"epoch/{key}", value, int(row["step"]))
        self.writer.flush()

    def _file_writer(self) -> Any:
        return self.writer._get_file_writer()

    def close(self) -> None:
        if self.end is not None:
            self._file_writer().add_summary(self.end)
        self.writer.close()
