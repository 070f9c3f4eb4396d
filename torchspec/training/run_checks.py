"""Checks of the ``train`` section against the model and the run, at ``check`` time (torch-free).

* The loss against the model's output: CrossEntropyLoss/NLLLoss on a per-sample output of rank > 1
  made by a Linear (a forgotten Flatten: the classes would be read from the wrong dimension); a
  BCEWithLogitsLoss of more than one output fed class labels; a regression loss fed class labels
  or put on a Softmax/LogSoftmax head.
* The scheduler against the run, when the steps per epoch are known from the source (its sample
  count): CosineAnnealingLR with T_max < epochs (the learning rate climbs again), OneCycleLR's
  total_steps against epochs x steps (fewer is an error: torch refuses to step past it), warmup
  longer than the run.
* ``log: [tensorboard]`` without the tensorboard package installed (an error: the run would fail
  when it opens its event file).

Each problem is located at the key to change, with the fix. Errors stop ``check`` and ``train``;
warnings are printed and the run goes on.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

from torchspec.errors import Problem
from torchspec.infer import ShapeReport
from torchspec.source import Document
from torchspec.training import config as C

__all__ = ["run_problems", "steps_per_epoch"]

# sources whose targets are class labels (integers), whatever the loss
LABEL_SOURCES = ("synthetic-motion", "digits", "video-folder", "frame-folder", "image-folder")
DIGITS = 1797  # scikit-learn's digits: samples


def _labels(source: C.DataSource) -> bool:
    if isinstance(source, C.RandomData):
        return source.task == "classification"
    return source.source in LABEL_SOURCES


def steps_per_epoch(config: C.TrainConfig) -> int | None:
    """Optimizer steps per epoch (one process) when the source's size is known without loading it."""
    source = config.data
    if isinstance(source, (C.SyntheticMotion, C.RandomData)):
        samples = source.samples
    elif isinstance(source, C.Digits):
        samples = DIGITS
    else:
        return None
    if config.val is None and config.val_fraction > 0:  # as data.load_data splits
        samples -= min(max(1, round(samples * config.val_fraction)), samples - 1)
    batches = samples // config.batch_size if config.drop_last else -(-samples // config.batch_size)
    return -(-batches // config.accumulate_steps)


def _warning(problem: Problem) -> Problem:
    return replace(problem, severity="warning")


def _loss_problems(doc: Document, report: ShapeReport, config: C.TrainConfig) -> list[Problem]:
    out = tuple(report.output[1:])  # per sample
    loss = config.loss.type
    last = report.rows[-1] if report.rows else None
    where = ("train", "loss")
    found: list[Problem] = []
    if loss in C.CLASSIFICATION_LOSSES and len(out) > 1 and last is not None and last.type == "Linear":
        found.append(
            doc.problem(
                last.data_path,
                f"{loss} reads classes from dimension 1 of the output, but this Linear makes a per-sample "
                f"output of shape {list(out)} (it acts on the last dimension only), so the classes "
                f"would be the {out[0]} rows of {list(out)}",
                [
                    "add Flatten before Linear for one prediction per sample",
                    "for a prediction per position, put the classes first (a Conv layer, or permute)",
                ],
            )
        )
    if loss == "BCEWithLogitsLoss" and _labels(config.data) and len(out) == 1 and out[0] != 1:
        found.append(
            doc.problem(
                where,
                f"BCEWithLogitsLoss needs one target per output ({out[0]} per sample), but "
                f"train.data ({config.data.source}) gives one class label per sample",
                [
                    "for classes use CrossEntropyLoss",
                    "for a yes/no label make the last layer output 1 value",
                ],
            )
        )
    regression = loss not in C.CLASSIFICATION_LOSSES and loss != "BCEWithLogitsLoss"
    if regression and _labels(config.data):
        found.append(
            doc.problem(
                where,
                f"{loss} is a regression loss, but train.data ({config.data.source}) gives class labels",
                ["use CrossEntropyLoss for class labels (train.loss: CrossEntropyLoss)"],
            )
        )
    elif regression and last is not None and last.type in ("Softmax", "LogSoftmax"):
        found.append(
            _warning(
                doc.problem(
                    where,
                    f"{loss} on a {last.type} head: a regression loss on class probabilities "
                    "rarely learns the classes",
                    [
                        "for classes use CrossEntropyLoss (on raw logits: drop the Softmax) "
                        "or NLLLoss after LogSoftmax"
                    ],
                )
            )
        )
    return found


def _schedule_problems(doc: Document, config: C.TrainConfig) -> list[Problem]:
    found: list[Problem] = []
    sched = config.scheduler
    epochs = config.epochs
    if isinstance(sched, C.CosineAnnealingLR) and sched.T_max < epochs:
        found.append(
            _warning(
                doc.problem(
                    ("train", "scheduler", "T_max"),
                    f"CosineAnnealingLR with T_max {sched.T_max} < epochs {epochs}: the learning rate "
                    f"reaches eta_min at epoch {sched.T_max}, then climbs again",
                    [f"set T_max: {epochs} (the scheduler steps once per epoch)"],
                )
            )
        )
    steps = steps_per_epoch(config)
    if steps is None:
        return found
    total = epochs * steps
    if isinstance(sched, C.OneCycleLR) and sched.total_steps is not None and sched.total_steps != total:
        fewer = sched.total_steps < total
        problem = doc.problem(
            ("train", "scheduler", "total_steps"),
            f"OneCycleLR total_steps {sched.total_steps}, but the run makes {total} optimizer steps "
            f"({epochs} epochs x {steps})"
            + (": torch refuses to step past total_steps" if fewer else ": the cycle never finishes"),
            [f"drop total_steps (it defaults to epochs x steps per epoch = {total})"],
        )
        found.append(problem if fewer else _warning(problem))
    if config.warmup_steps > total:
        found.append(
            _warning(
                doc.problem(
                    ("train", "warmup_steps"),
                    f"warmup_steps {config.warmup_steps} is longer than the run ({total} optimizer steps): "
                    "the learning rate never reaches its scheduled value",
                    [f"use fewer warmup steps than {total} (e.g. {max(1, total // 10)})"],
                )
            )
        )
    return found


def _log_problems(doc: Document, config: C.TrainConfig) -> list[Problem]:
    if "tensorboard" not in config.log or _installed("tensorboard"):
        return []
    message = 'train.log: tensorboard needs the tensorboard extra: pip install "torchspec[tensorboard]"'
    hint = "or drop tensorboard from train.log (csv alone writes metrics.csv)"
    return [doc.problem(("train", "log", config.log.index("tensorboard")), message, [hint])]


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (``check`` stays light)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or sys.modules[name] = None
        return False


def run_problems(doc: Document, report: ShapeReport, config: C.TrainConfig) -> list[Problem]:
    """Errors and warnings (``severity``) of the train section against the model and the run."""
    return _loss_problems(doc, report, config) + _schedule_problems(doc, config) + _log_problems(doc, config)
