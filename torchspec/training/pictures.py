"""Pictures as files: a matplotlib Figure rendered to PNG, SVG or PDF bytes and written atomically,
and the confusion-matrix picture of ``torchspec eval --confusion``.

matplotlib is imported only when a picture is made, and only its object API is used
(``matplotlib.figure.Figure`` drawn by ``FigureCanvasAgg``): no pyplot, no global figure state, no
display needed. The bytes go through :func:`torchspec.fileio.write_bytes` (a temporary file renamed
into place), so a reader never sees half a picture and a symlink at the name is replaced, never
written through. Torch-free.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from torchspec.errors import SpecError
from torchspec.fileio import write_bytes

__all__ = ["PICTURE_FORMATS", "confusion_figure", "new_figure", "picture_format", "render", "write_picture"]

PICTURE_FORMATS = ("png", "svg", "pdf")
DPI = 100
TEXT_CELLS_MAX = 30  # above this many classes the cells carry no numbers (they would not be readable)


def picture_format(path: str, what: str = "the picture") -> str:
    """``png``/``svg``/``pdf`` from ``path``'s extension; any other is an error naming the path."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in PICTURE_FORMATS:
        raise SpecError.single(
            path,
            f"cannot write {what} as {path}: use a .png, .svg or .pdf file name",
        )
    return ext


def new_figure(width: float, height: float) -> Any:
    """A Figure of ``width`` x ``height`` inches with its own Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def render(figure: Any, fmt: str = "png") -> bytes:
    """The figure's bytes; SVG text stays text (searchable, editable), not outlines."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        figure.savefig(buffer, format=fmt, dpi=DPI, facecolor="white")
    return buffer.getvalue()


def write_picture(figure: Any, path: str, what: str = "the picture") -> None:
    """Render ``figure`` in the format ``path``'s extension names and write it atomically."""
    write_bytes(path, render(figure, picture_format(path, what)))


def confusion_figure(
    confusion: Sequence[Sequence[int]], names: Sequence[str] | None = None, title: str = ""
) -> Any:
    """The confusion matrix (rows: true class, columns: predicted) coloured by each row's share
    (the recall of the diagonal), with the counts in the cells up to :data:`TEXT_CELLS_MAX` classes;
    ``names``: the class names (default: 0 .. C-1)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    counts = np.asarray(confusion, dtype=np.int64)  # (C, C)
    classes = counts.shape[0]
    labels = list(names) if names is not None and len(names) == classes else [str(i) for i in range(classes)]
    totals = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(totals, 1)  # (C, C): each true class's row sums to 1 (0 if absent)
    longest = max(len(label) for label in labels)
    side = min(max(4.5, 0.32 * classes + 2.5 + 0.06 * min(longest, 20)), 12.0)
    figure = new_figure(side + 1.0, side)
    ax = figure.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="share of the true class")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix")
    if classes <= TEXT_CELLS_MAX:
        ticks = list(range(classes))
        ax.set_xticks(ticks, [label[:20] for label in labels], rotation=90 if longest > 3 else 0)
        ax.set_yticks(ticks, [label[:20] for label in labels])
        size = 9 if classes <= 12 else 7 if classes <= 20 else 5
        for (row, col), count in np.ndenumerate(counts):
            colour = "white" if share[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=size, color=colour)
    else:  # many classes: index ticks only, sparse enough to read
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    return figure
