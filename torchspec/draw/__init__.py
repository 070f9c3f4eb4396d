"""``torchspec draw``: the architecture as a picture, from shapes alone (torch is not imported).

spec -> :func:`~torchspec.infer.infer_shapes` -> :func:`build_diagram` (boxes, links with shapes,
frames) -> :func:`lay_out` (grandalf's layered layout, pure Python) -> :func:`render` (matplotlib,
SVG or PNG bytes) -> :func:`draw` writes the file atomically.
"""

from __future__ import annotations

import os

from torchspec.draw.diagram import Box, Diagram, Frame, Link, build_diagram
from torchspec.draw.layout import Layout, lay_out
from torchspec.draw.render import FORMATS, render
from torchspec.infer import ShapeReport

__all__ = [
    "FORMATS",
    "Box",
    "Diagram",
    "Frame",
    "Layout",
    "Link",
    "build_diagram",
    "draw",
    "lay_out",
    "picture_format",
    "render",
]


def picture_format(path: str | os.PathLike[str]) -> str | None:
    """``svg`` or ``png`` from a file name's suffix (any case), None for anything else."""
    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    return suffix if suffix in FORMATS else None


def draw(
    report: ShapeReport,
    path: str | os.PathLike[str],
    depth: int | None = None,
    batch_as_n: bool = True,
) -> Layout:
    """Draw ``report`` into ``path`` (.svg or .png), written atomically; returns the layout.
    Containers nested deeper than ``depth`` are drawn as one box; shapes show the batch as N unless
    ``batch_as_n`` is false. Raises ValueError for another suffix, WriteError if it cannot write."""
    from torchspec.fileio import write_bytes

    fmt = picture_format(path)
    if fmt is None:
        raise ValueError(f"{os.fspath(path)!r}: a picture is written as .svg or .png")
    layout = lay_out(build_diagram(report, depth, batch_as_n))
    write_bytes(path, render(layout, fmt))
    return layout
