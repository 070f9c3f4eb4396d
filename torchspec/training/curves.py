"""Training curves: ``curves.png`` in a run folder (loss, accuracy or the task's metric, learning
rate, per epoch) and the comparison of runs (``torchspec plot RUN_DIR ...``).

A run's curves come from its history (during training) or its ``metrics.csv`` (``plot``). A run
folder may be a stranger's or half-finished, so :func:`read_metrics` checks the file before it
trusts it: a missing, non-regular, oversized, non-UTF-8 or malformed ``metrics.csv`` is a
:class:`~torchspec.errors.SpecError` naming the file (and the line), never a traceback.
Torch-free; matplotlib is imported only when a figure is drawn (see :mod:`.pictures`).
"""

from __future__ import annotations

import csv
import math
import os
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from torchspec.errors import SpecError
from torchspec.training.pictures import new_figure, picture_format, write_picture

__all__ = ["CURVES_NAME", "Row", "compare_runs", "curves_figure", "read_metrics", "run_names", "write_curves"]

CURVES_NAME = "curves.png"
METRICS_NAME = "metrics.csv"
MAX_METRICS_BYTES = 64 * 2**20  # a year of epochs is a few MB; more is not a metrics.csv of ours
Row = Mapping[str, Any]  # one epoch: epoch, lr, train_loss, val_loss, train_accuracy, ... (None: absent)

# the second panel: accuracy for classifiers, else the regression errors (first found wins)
_METRIC_PANELS = (
    ("accuracy (%)", (("train_accuracy", "train accuracy"), ("val_accuracy", "val accuracy")), 100.0),
    ("error", (("val_mae", "val MAE"), ("val_rmse", "val RMSE")), 1.0),
)
_LOSSES = (("train_loss", "train loss"), ("val_loss", "val loss"))


def _fail(path: str, message: str, line: int = 0) -> SpecError:
    hint = f"a run folder holds {METRICS_NAME} once train has finished an epoch (with csv in train.log)"
    return SpecError.single(path, message, line=line, hints=[hint])


def read_metrics(run_dir: str) -> list[dict[str, float | None]]:
    """The rows of ``run_dir/metrics.csv`` as numbers (an empty cell: None), checked as a file that
    may come from anywhere: the folder and the file must exist, the file must be a regular file
    (a FIFO or device is never opened) of sane size, UTF-8, with an ``epoch`` column and numbers."""
    if not os.path.isdir(run_dir):
        what = "does not exist" if not os.path.lexists(run_dir) else "is not a folder"
        raise SpecError.single(run_dir, f"{run_dir} {what}: expected a run folder (train's output_dir)")
    path = os.path.join(run_dir, METRICS_NAME)
    try:
        info = os.stat(path)  # a link to a regular file is fine; to a FIFO or device, refused below
    except OSError:
        message = f"{run_dir} has no {METRICS_NAME}: not a run folder, or no epoch finished yet"
        raise _fail(path, message) from None
    if not stat.S_ISREG(info.st_mode):
        raise _fail(path, f"{path} is not a regular file")
    if info.st_size > MAX_METRICS_BYTES:
        raise _fail(path, f"{path} is {info.st_size:,} bytes: too large for a metrics.csv")
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_METRICS_BYTES + 1).decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(path, f"{path} is not UTF-8 text: not a metrics.csv") from None
    except OSError as exc:
        raise _fail(path, f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    return _parse(path, text)


def _parse(path: str, text: str) -> list[dict[str, float | None]]:
    try:
        lines = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise _fail(path, f"{path} is not a CSV file: {exc}") from None
    if not lines or "epoch" not in lines[0]:
        raise _fail(path, f"{path} has no header with an epoch column: not a metrics.csv", line=1)
    header = lines[0]
    rows: list[dict[str, float | None]] = []
    for number, cells in enumerate(lines[1:], start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            message = f"{path} line {number} has {len(cells)} cells, the header {len(header)}"
            raise _fail(path, message, line=number)
        row: dict[str, float | None] = {}
        for name, cell in zip(header, cells):
            try:
                row[name] = float(cell) if cell.strip() else None
            except ValueError:
                message = f"{path} line {number}: {name} is {cell[:40]!r}, not a number"
                raise _fail(path, message, line=number) from None
        epoch = row["epoch"]
        if epoch is None or not math.isfinite(epoch) or epoch < 1 or epoch != int(epoch):
            raise _fail(path, f"{path} line {number}: epoch {cells[header.index('epoch')]!r}", line=number)
        rows.append(row)
    if not rows:
        raise _fail(path, f"{path} holds no epochs yet")
    return rows


def _values(rows: Sequence[Row], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """(epochs, values) of ``key``; an epoch without it is NaN (a gap in the line)."""
    epochs = [float(row["epoch"]) for row in rows]
    # a missing or non-finite value (a stranger's inf) is a gap, never an axis stretched to infinity
    values = [float(row[key]) * scale if row.get(key) is not None else math.nan for row in rows]
    values = [v if math.isfinite(v) else math.nan for v in values]
    return epochs, values


def _has(runs: Sequence[tuple[str, Sequence[Row]]], key: str) -> bool:
    return any(row.get(key) is not None for _, rows in runs for row in rows)


def curves_figure(runs: Sequence[tuple[str, Sequence[Row]]], title: str | None = None) -> Any:
    """Loss, the task's metric (accuracy, or MAE/RMSE) and the learning rate against the epoch, one
    panel each; one run: train and val in two colours; several: a colour per run (the legend names
    them), dashed train and solid val lines."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels: list[tuple[str, tuple[tuple[str, str], ...], float]] = [("loss", _LOSSES, 1.0)]
    metric = next((p for p in _METRIC_PANELS if any(_has(runs, key) for key, _ in p[1])), None)
    if metric is not None:
        panels.append(metric)
    panels.append(("learning rate", (("lr", "learning rate"),), 1.0))
    figure = new_figure(4.0 * len(panels), 3.4)
    single = len(runs) == 1
    longest = max((len(rows) for _, rows in runs), default=0)
    marker = "o" if longest <= 40 else None
    for index, (label, series, scale) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), index + 1)
        for number, (_, rows) in enumerate(runs):
            for split, (key, text) in enumerate(series):
                if not any(row.get(key) is not None for row in rows):
                    continue
                colour = f"C{split}" if single else f"C{number % 10}"
                dashed = not single and key.startswith("train_")
                ax.plot(
                    *_values(rows, key, scale),
                    color=colour,
                    linestyle="--" if dashed else "-",
                    marker=marker,
                    markersize=3,
                    label=text if single else None,
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if label == "learning rate" and _spans_decades(runs):
            ax.set_yscale("log")
        if single and len(ax.get_lines()) > 1:
            ax.legend(fontsize=8)
    if not single:  # one legend for the figure: the runs by colour, the line styles
        handles = [Line2D([], [], color=f"C{i % 10}", label=name) for i, (name, _) in enumerate(runs)]
        handles += [
            Line2D([], [], color="grey", linestyle="--", label="train"),
            Line2D([], [], color="grey", linestyle="-", label="val"),
        ]
        figure.legend(handles=handles, loc="outside right center", fontsize=8)
    if title or single:
        figure.suptitle(title or runs[0][0], fontsize=11)
    return figure


def _spans_decades(runs: Sequence[tuple[str, Sequence[Row]]]) -> bool:
    """A log scale for a learning rate that changes by 30x or more (all positive)."""
    rates = [float(row["lr"]) for _, rows in runs for row in rows if row.get("lr") is not None]
    return bool(rates) and min(rates) > 0 and max(rates) / min(rates) >= 30


def write_curves(run_dir: str, history: Sequence[Row], name: str | None = None) -> str:
    """``run_dir/curves.png`` from the run's history (every epoch so far, resumed ones included)."""
    path = os.path.join(run_dir, CURVES_NAME)
    label = name or os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    write_picture(curves_figure([(label, history)]), path, "the training curves")
    return path


def run_names(run_dirs: Sequence[str]) -> list[str]:
    """Legend names: each folder's name, or its path as given where two names are the same."""
    bases = [os.path.basename(os.path.normpath(os.path.abspath(d))) for d in run_dirs]
    return [b if bases.count(b) == 1 else os.path.normpath(d) for b, d in zip(bases, run_dirs)]


def compare_runs(run_dirs: Sequence[str], output: str, title: str | None = None) -> str:
    """The runs' curves overlaid in one picture at ``output`` (.png, .svg or .pdf); every run's
    metrics.csv is read and checked before anything is drawn or written."""
    picture_format(output, "the comparison")  # a wrong extension before any reading
    runs = list(zip(run_names(run_dirs), [read_metrics(d) for d in run_dirs]))
    figure = curves_figure(runs, title)
    write_picture(figure, output, "the comparison")
    return output
