"""Paint a :class:`~torchspec.draw.layout.Layout` with matplotlib into SVG or PNG bytes.

No pyplot and no global state: a :class:`matplotlib.figure.Figure` is drawn by its own Agg (PNG)
or SVG canvas. One point of the layout is one point of the figure (the axes span the figure and
their limits are its size in points), so the fixed font sizes of the layout are the sizes printed.
SVG keeps its text as ``<text>`` elements (``svg.fonttype: none``): searchable, and what tests read.
"""

from __future__ import annotations

import io
from typing import Any

from torchspec.draw.geometry import FONT, FRAME_PAD, LABEL_FONT, LINE, PAD_Y, TITLE_FONT, Layout

__all__ = ["FORMATS", "MAX_PIXELS", "render"]

FORMATS = ("svg", "png")
DPI = 100.0  # PNG pixels per inch
MAX_PIXELS = 32000  # a PNG side at most (Agg's limit is 2**16); a huge model is drawn at a lower dpi

_FILL = {
    "io": "#e4e8ec",
    "conv": "#d6e6f5",
    "norm": "#dcefd8",
    "act": "#f2f2f2",
    "pool": "#fbe3c8",
    "linear": "#e6dcf3",
    "dropout": "#f7f7f7",
    "merge": "#fff0a6",
    "block": "#cfdceb",
    "other": "#eeeeee",
}
_EDGE, _SKIP, _TEXT, _MUTED = "#4a5561", "#d9731a", "#1d232a", "#5f6b78"
_FRAME_FILLS = ("#f5f8fb", "#edf2f7", "#e6edf4", "#dfe8f1")


def render(layout: Layout, fmt: str) -> bytes:
    """The picture as ``fmt`` ("svg" or "png") bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}; expected one of {', '.join(FORMATS)}")
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(layout.width / 72.0, layout.height / 72.0), dpi=72.0)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(0, layout.width)
        ax.set_ylim(layout.height, 0)  # y grows downwards, like the layout's
        ax.set_axis_off()
        _frames(ax, layout)
        _links(ax, layout)
        _boxes(ax, layout)
        return _save(fig, fmt, layout)


_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text
    "svg.hashsalt": "torchspec",  # the same model gives the same file
    "font.family": "DejaVu Sans",  # matplotlib's own font: the layout's widths are measured for it
    "path.simplify": False,
}


def _save(fig: Any, fmt: str, layout: Layout) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # the figure's own canvas; savefig picks the SVG one for svg
    buffer = io.BytesIO()
    if fmt == "svg":
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    else:
        biggest = max(layout.width, layout.height) / 72.0
        dpi = min(DPI, MAX_PIXELS / biggest)
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": "torchspec draw"})
    return buffer.getvalue()


def _frames(ax: Any, layout: Layout) -> None:
    from matplotlib.patches import FancyBboxPatch

    for frame, rect in layout.frames:  # outermost first: inner ones are painted over them
        level = len(frame.frames)
        patch = FancyBboxPatch(
            (rect.x0, rect.y0),
            rect.x1 - rect.x0,
            rect.y1 - rect.y0,
            boxstyle="round,pad=0,rounding_size=4",
            facecolor=_FRAME_FILLS[level % len(_FRAME_FILLS)],
            edgecolor="#8d9aa8",
            linewidth=0.7,
            zorder=1 + level * 0.01,
        )
        ax.add_patch(patch)
        ax.text(
            rect.x0 + FRAME_PAD * 0.6,
            rect.y0 + 2.0,
            frame.title,
            fontsize=TITLE_FONT,
            color=_MUTED,
            ha="left",
            va="top",
            zorder=1.5,
        )


def _links(ax: Any, layout: Layout) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    for route in sorted(layout.routes, key=lambda r: not r.link.skip):  # the main path over skips
        link = route.link
        colour = _SKIP if link.skip else _EDGE
        arrow = FancyArrowPatch(
            path=Path(list(route.points)),
            arrowstyle="-|>",
            mutation_scale=7,
            linewidth=0.9,
            color=colour,
            shrinkA=0,
            shrinkB=0,
            zorder=2.1 if link.skip else 2.2,
        )
        ax.add_patch(arrow)
        if route.label_at is not None:
            ax.text(
                *route.label_at,
                link.label,
                fontsize=LABEL_FONT,
                color=_MUTED,
                ha="left",
                va="center",
                zorder=4,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
            )


def _boxes(ax: Any, layout: Layout) -> None:
    from matplotlib.patches import FancyBboxPatch

    for p in layout.boxes:
        box = p.box
        rect = p.rect
        patch = FancyBboxPatch(
            (rect.x0, rect.y0),
            p.w,
            p.h,
            boxstyle="round,pad=0,rounding_size=6"
            if box.kind in ("input", "output")
            else "round,pad=0,rounding_size=2.5",
            facecolor=_FILL.get(box.family, _FILL["other"]),
            edgecolor=_EDGE,
            linewidth=1.2 if box.kind in ("block", "merge") else 0.7,
            zorder=3,
        )
        ax.add_patch(patch)
        for i, line in enumerate(box.lines):
            first = i == 0 and len(box.lines) > 1
            ax.text(
                p.x,
                rect.y0 + PAD_Y + (i + 0.5) * LINE,
                line,
                fontsize=FONT,
                fontweight="bold" if first else "normal",
                color=_TEXT if first or len(box.lines) == 1 else "#2e3740",
                ha="center",
                va="center",
                zorder=4,
            )
