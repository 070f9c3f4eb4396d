"""What a run prints: the shape table, a progress bar per epoch (plain lines off a terminal), a
line per epoch, the summary; and ``metrics.csv``."""

from __future__ import annotations

import csv
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from torchspec.fileio import atomic_write
from torchspec.infer import ShapeReport

__all__ = ["COLUMNS", "Reporter", "render_shape_table", "write_metrics"]

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def render_shape_table(report: ShapeReport, console: Console) -> None:
    """The model's shape table: ``torchspec.report.render_table`` when present, else a minimal one."""
    try:
        from torchspec.report import render_table  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        table = Table(title=f"{report.name}: input {list(report.input)}", title_justify="left")
        for name in ("layer", "type", "output", "params"):
            table.add_column(name, justify="right" if name == "params" else "left")
        for row in report.rows:
            table.add_row(row.path, row.summary, str(list(row.output)), f"{row.params:,}")
        table.add_row("", "total", str(list(report.output)), f"{report.params:,}", style="bold")
        console.print(table)
        return
    render_table(report, console)


def write_metrics(path: str, history: list[dict[str, Any]]) -> None:
    """The whole ``metrics.csv`` from the history (rewritten each epoch: a resume stays consistent)."""
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        # then the task's other metrics (val_macro_f1, val_mae, ...), in the order the rows hold them
        extra = [k for k in dict.fromkeys(k for row in history for k in row) if k not in COLUMNS]
        columns = [*COLUMNS[:-1], *extra, COLUMNS[-1]]
        writer.writerow(columns)
        for row in history:
            writer.writerow(["" if row.get(c) is None else _cell(row[c]) for c in columns])


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if percent else f"{value:.4f}"


class Reporter:
    """Prints to stderr-free stdout; ``quiet`` keeps only the summary and warnings; ``silent``
    (DDP ranks other than 0) prints nothing."""

    def __init__(self, quiet: bool = False, console: Console | None = None, silent: bool = False) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False)
        self.quiet = quiet or silent
        self.silent = silent
        self.live = self.console.is_terminal and not self.quiet
        self.progress: Progress | None = None
        self.task: Any = None

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        if not self.silent:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def table(self, report: ShapeReport) -> None:
        if not self.quiet:
            render_shape_table(report, self.console)

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int) -> None:
        if not self.live:
            return
        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, stats="")

    def advance(self, loss: float, accuracy: float | None, samples_per_s: float) -> None:
        if self.progress is not None:
            acc = f" acc {_fmt(accuracy, True)}" if accuracy is not None else ""
            stats = f"loss {loss:.4f}{acc} {samples_per_s:,.0f} samples/s"
            self.progress.update(self.task, advance=1, stats=stats)

    def end_epoch(self, row: dict[str, Any], epochs: int, best: bool) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {_fmt(row['train_loss'])}"]
        if row["train_accuracy"] is not None:
            parts.append(f"acc {_fmt(row['train_accuracy'], True)}")
        if row["val_loss"] is not None:
            parts.append(f"| val loss {_fmt(row['val_loss'])}")
            if row["val_accuracy"] is not None:
                parts.append(f"acc {_fmt(row['val_accuracy'], True)}")
        parts.append(f"| lr {row['lr']:.3g} | {row['seconds']:.1f}s" + (" *" if best else ""))
        self.say(" ".join(parts))

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
