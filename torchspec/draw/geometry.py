"""The picture's geometry: sizes in points (1/72 inch, y growing downwards), text sizes fixed in
points (a deep model makes a tall picture, not a small font), and what the layout hands the renderer."""

from __future__ import annotations

from dataclasses import dataclass

from torchspec.draw.diagram import Box, Frame, Link

__all__ = [
    "FONT",
    "LABEL_FONT",
    "LINE",
    "TITLE_FONT",
    "Layout",
    "Placed",
    "Rect",
    "Route",
    "box_size",
    "text_width",
]

FONT = 8.0  # box text, points
TITLE_FONT = 7.5  # frame titles
LABEL_FONT = 6.5  # shapes on links
LINE = FONT * 1.35  # line height in a box
CHAR = 0.62  # a character's width in ems (DejaVu Sans, with a margin: boxes never clip their text)
PAD_X, PAD_Y = 7.0, 5.0  # text to box border
X_GAP = 22.0  # between neighbouring boxes of a rank
DUMMY_GAP = 8.0  # beside a link's bend point
Y_GAP = 30.0  # between ranks: the link with its shape label
PORT_GAP = 10.0  # from a frame's entry port to the first rank inside
FRAME_PAD = 8.0  # a frame's margin around what it holds
FRAME_TITLE = TITLE_FONT * 1.6  # a frame's title bar
MARGIN = 12.0  # around the picture
LABEL_DX = 3.5  # a shape label starts this far right of its link
ENTRY = 5.0  # a link enters a box straight down over this length


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Rect) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, other: Rect) -> bool:
        return other.x0 <= self.x0 and self.x1 <= other.x1 and other.y0 <= self.y0 and self.y1 <= other.y1


@dataclass(frozen=True)
class Placed:
    box: Box
    x: float  # centre
    y: float
    w: float
    h: float

    @property
    def rect(self) -> Rect:
        return Rect(self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


@dataclass(frozen=True)
class Route:
    link: Link
    points: tuple[tuple[float, float], ...]  # from the source's bottom to the target's top
    label_at: tuple[float, float] | None = None  # the shape's left end (None: written by another route)


@dataclass
class Layout:
    width: float
    height: float
    boxes: list[Placed]
    routes: list[Route]
    frames: list[tuple[Frame, Rect]]  # outermost first


def text_width(text: str, size: float = FONT, bold: bool = False) -> float:
    return len(text) * size * CHAR * (1.15 if bold else 1.0)


def box_size(box: Box) -> tuple[float, float]:
    widths = [text_width(line, bold=i == 0 and len(box.lines) > 1) for i, line in enumerate(box.lines)]
    return max(widths) + 2 * PAD_X, len(box.lines) * LINE + 2 * PAD_Y
