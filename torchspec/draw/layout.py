"""Geometry for a :class:`~torchspec.draw.diagram.Diagram`: where each box, link and frame goes.

A container is a single-entry, single-exit piece of the graph (its layers read siblings or its
input; the outside reads its last layer), so frames are laid out inside out: each frame's children
(boxes and inner frames, already sized) are placed by grandalf's Sugiyama layout (the layered
layout of graphviz's ``dot``, in pure Python), with an entry port under the title bar feeding the
children that read the container's input; the frame is then one box of that size one level up.
Frames therefore never overlap each other or a box outside them, and a link crossing into a frame
enters through its port. On top of grandalf this module keeps boxes of a rank apart by their
widths (grandalf averages four alignments, which may let neighbours touch), spaces the ranks so a
shape label fits between them, and widens a frame to hold its title and its labels.

All lengths are points (1/72 inch) with y growing downwards; text sizes are fixed in points, so
the picture grows with the model and its text stays readable.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from torchspec.draw.diagram import Box, Diagram, Frame, Link

__all__ = ["FONT", "LABEL_FONT", "LINE", "TITLE_FONT", "Layout", "Placed", "Rect", "Route", "lay_out"]

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
    return len(text) * size * CHAR * (1.08 if bold else 1.0)


def box_size(box: Box) -> tuple[float, float]:
    widths = [text_width(line, bold=i == 0 and len(box.lines) > 1) for i, line in enumerate(box.lines)]
    return max(widths) + 2 * PAD_X, len(box.lines) * LINE + 2 * PAD_Y


class _View:
    """grandalf's vertex view: a size in, a centre out."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


@dataclass
class _Level:
    """One frame's inside (or the whole picture's), in coordinates relative to its top-left."""

    w: float = 0.0
    h: float = 0.0
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # child (or port) -> centre
    bends: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    bands: dict[str, float] = field(default_factory=dict)  # child -> y of the shape labels below it


def _port(frame: str) -> str:
    return f"@in:{frame}"


def lay_out(diagram: Diagram) -> Layout:
    """Place every box, route every link, frame every open container."""
    boxes = {b.id: b for b in diagram.boxes}
    parent = {b.id: (b.frames[-1] if b.frames else "") for b in diagram.boxes}
    parent.update({f.id: (f.frames[-1] if f.frames else "") for f in diagram.frames})
    children: dict[str, list[str]] = defaultdict(list)
    for item, holder in parent.items():
        children[holder].append(item)
    # every link as hops, one per level: (level, from child, to child); entering a frame is a hop
    # from its port
    hops: list[list[tuple[str, str, str]]] = []
    for link in diagram.links:
        src, dst = boxes[link.src].frames, boxes[link.dst].frames
        common = _common(src, dst)
        at = common[-1] if common else ""
        hop = [(at, _child(link.src, src, len(common)), _child(link.dst, dst, len(common)))]
        hop += [(dst[k], _port(dst[k]), _child(link.dst, dst, k + 1)) for k in range(len(common), len(dst))]
        hops.append(hop)
    exits: dict[str, str] = {}  # frame -> its child holding the layer that is the frame's output
    for link in diagram.links:
        src, dst = boxes[link.src].frames, boxes[link.dst].frames
        for k in range(len(_common(src, dst)), len(src)):
            exits[src[k]] = _child(link.src, src, k + 1)
    labels: dict[tuple[str, str], float] = defaultdict(float)  # (level, child) -> widest label below
    for link, hop in zip(diagram.links, hops):
        key = hop[0][:2]
        labels[key] = max(labels[key], text_width(link.label, LABEL_FONT))
    out_x: dict[str, float] = {}  # a frame's exit: the x of its last layer, relative to the frame
    sizes = {b.id: box_size(b) for b in diagram.boxes}
    levels: dict[str, _Level] = {}
    for frame in [*sorted(diagram.frames, key=lambda f: -len(f.frames)), Frame("", "")]:
        edges = list(dict.fromkeys((a, b) for hop in hops for lv, a, b in hop if lv == frame.id))
        level = _place(children[frame.id], edges, sizes)

        def exit_x(child: str, level: _Level = level) -> float:
            return (
                level.at[child][0] - sizes[child][0] / 2 + out_x[child]
                if child in out_x
                else level.at[child][0]
            )

        label_spans = [
            (exit_x(c) + LABEL_DX, exit_x(c) + LABEL_DX + w)
            for (lv, c), w in labels.items()
            if lv == frame.id
        ]
        _frame(level, sizes, label_spans, frame)
        levels[frame.id] = level
        sizes[frame.id] = (level.w, level.h)
        if frame.id in exits:
            out_x[frame.id] = exit_x(exits[frame.id])
    origin = _origins(levels, sizes, children)
    placed = [
        Placed(b, origin[parent[b.id]][0] + levels[parent[b.id]].at[b.id][0],
               origin[parent[b.id]][1] + levels[parent[b.id]].at[b.id][1], *sizes[b.id])
        for b in diagram.boxes
    ]  # fmt: skip
    frames = [
        (f, Rect(*origin[f.id], origin[f.id][0] + sizes[f.id][0], origin[f.id][1] + sizes[f.id][1]))
        for f in diagram.frames
    ]
    routes = [
        _route(link, hop, {p.box.id: p for p in placed}, levels, origin, sizes, out_x)
        for link, hop in zip(diagram.links, hops)
    ]
    return _fitted(Layout(sizes[""][0], sizes[""][1], placed, _labels(routes), frames))


def _child(box: str, frames: tuple[str, ...], depth: int) -> str:
    """What holds ``box`` among the children of its frame at ``depth`` (the box itself at its own)."""
    return frames[depth] if len(frames) > depth else box


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _place(items: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]]) -> _Level:
    """grandalf's layered layout of one level's children (and its port), ranks spaced by hand."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    vertices = {item: Vertex(item) for item in items}
    ports = {a for a, _ in edges if a not in vertices}
    for port in ports:
        vertices[port] = Vertex(port)
    for item, vertex in vertices.items():
        vertex.view = _View(*sizes[item]) if item in sizes else _View(1.0, 0.0)
    graph = Graph(list(vertices.values()), [Edge(vertices[a], vertices[b]) for a, b in edges])
    level = _Level()
    ranks: dict[int, list[tuple[str | None, float, float]]] = defaultdict(list)  # name (None: a bend), x, w
    bend_rank: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)  # edge -> (rank, slot)
    offset = 0.0
    for component in graph.C:  # side by side (one component, but for learned tensors read nowhere)
        sug = SugiyamaLayout(component)
        sug.xspace, sug.yspace = X_GAP, Y_GAP
        sug.init_all(optimize=True)
        sug.draw(3)
        shift = offset - min(v.view.xy[0] - v.view.w / 2 for v in component.sV)
        rank_of = {}
        for v in component.sV:
            rank_of[v.data] = sug.grx[v].rank
            ranks[rank_of[v.data]].append((v.data, v.view.xy[0] + shift, v.view.w))
        for edge in component.sE:
            pair = (edge.v[0].data, edge.v[1].data)
            for r, dummy in sorted(sug.ctrls.get(edge, {}).items()):
                if r not in (rank_of[pair[0]], rank_of[pair[1]]):
                    bend_rank[pair].append((r, len(ranks[r])))
                    ranks[r].append((None, dummy.view.xy[0] + shift, 0.0))
        offset = max(x + w / 2 for r in ranks.values() for _, x, w in r) + X_GAP * 2
    xs = {r: _spread(items_) for r, items_ in ranks.items()}
    y, prev_half, prev_port = 0.0, 0.0, False
    ys: dict[int, float] = {}
    halves: dict[int, float] = {}
    for r in range(min(ranks), max(ranks) + 1):
        half = max((sizes[n][1] / 2 for n, _, _ in ranks.get(r, []) if n in sizes), default=0.0)
        y += (prev_half + (PORT_GAP if prev_port else Y_GAP) + half) if ys else half
        ys[r], halves[r] = y, half
        for slot, (name, _, _) in enumerate(ranks.get(r, [])):
            if name is not None:  # top-aligned: links come in from the gap above, clear of the rank
                level.at[name] = (xs[r][slot], y - half + (sizes[name][1] / 2 if name in sizes else 0.0))
                level.bands[name] = y + half + Y_GAP / 2
        prev_half, prev_port = half, all(n in ports for n, _, _ in ranks.get(r, []) if n is not None)
    for pair, slots in bend_rank.items():  # a link crosses a rank straight down, beside its boxes
        level.bends[pair] = [(xs[r][slot], ys[r] + dy * halves[r]) for r, slot in slots for dy in (-1, 1)]
    return level


def _spread(items: list[tuple[str | None, float, float]]) -> list[float]:
    """A rank's x positions (in its items' order), pushed apart left to right so neighbours keep
    their gap, then centred where grandalf had them."""
    order = sorted(range(len(items)), key=lambda i: items[i][1])
    xs = [x for _, x, _ in items]
    for left, right in itertools.pairwise(order):
        both = items[left][0] is not None and items[right][0] is not None
        least = xs[left] + items[left][2] / 2 + (X_GAP if both else DUMMY_GAP) + items[right][2] / 2
        xs[right] = max(xs[right], least)
    drift = (sum(xs) - sum(x for _, x, _ in items)) / len(items)
    return [x - drift for x in xs]


def _frame(
    level: _Level, sizes: dict[str, tuple[float, float]], labels: list[tuple[float, float]], frame: Frame
) -> None:
    """Move a level's contents so its frame (or the picture) starts at (0, 0); set its size. A
    frame has a title bar above its port and a margin around its children and their labels."""
    items = [(x - sizes[n][0] / 2, y - sizes[n][1] / 2, x + sizes[n][0] / 2, y + sizes[n][1] / 2)
             for n, (x, y) in level.at.items() if n in sizes]  # fmt: skip
    points = [p for bends in level.bends.values() for p in bends]
    x0 = min([r[0] for r in items] + [x for x, _ in points] + [a for a, _ in labels])
    x1 = max([r[2] for r in items] + [x for x, _ in points] + [b for _, b in labels])
    y0, y1 = min(r[1] for r in items), max(r[3] for r in items)
    if frame.id:
        ports = [y for n, (_, y) in level.at.items() if n not in sizes]
        top = min([*ports, y0 - FRAME_PAD])  # a learned tensor may stand beside the port, taller
        left, top = x0 - FRAME_PAD, top - FRAME_TITLE - 2.0
        right = max(x1 + FRAME_PAD, left + text_width(frame.title, TITLE_FONT) + 2 * FRAME_PAD)
        bottom = y1 + FRAME_PAD
    else:
        left, top, right, bottom = x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN
    level.at = {n: (x - left, y - top) for n, (x, y) in level.at.items()}
    level.bends = {e: [(x - left, y - top) for x, y in ps] for e, ps in level.bends.items()}
    level.bands = {n: y - top for n, y in level.bands.items()}
    level.w, level.h = right - left, bottom - top


def _origins(
    levels: dict[str, _Level], sizes: dict[str, tuple[float, float]], children: dict[str, list[str]]
) -> dict[str, tuple[float, float]]:
    """Each level's top-left on the picture, from the outside in."""
    origin = {"": (0.0, 0.0)}
    todo = [""]
    while todo:
        frame = todo.pop()
        ox, oy = origin[frame]
        for child in children[frame]:
            if child in levels:
                x, y = levels[frame].at[child]
                origin[child] = (ox + x - sizes[child][0] / 2, oy + y - sizes[child][1] / 2)
                todo.append(child)
    return origin


def _route(
    link: Link,
    hops: list[tuple[str, str, str]],
    placed: dict[str, Placed],
    levels: dict[str, _Level],
    origin: dict[str, tuple[float, float]],
    sizes: dict[str, tuple[float, float]],
    out_x: dict[str, float],
) -> Route:
    """Out of the source's bottom (and down through the frames it closes), through the bend
    points of each level, into each frame by its port, into the target's top."""
    src = placed[link.src]
    level, first, _ = hops[0]
    band = origin[level][1] + levels[level].bands[first]
    # straight down out of the source (and the frames it closes) past the band with its shape
    points = [(src.x, src.y + src.h / 2), (src.x, band + LABEL_FONT * 0.7)]
    for level, a, b in hops:
        ox, oy = origin[level]
        points += [(ox + x, oy + y) for x, y in levels[level].bends.get((a, b), [])]
        if b in levels:  # a frame: in at its port
            px, py = levels[b].at[_port(b)]
            x, top = origin[b][0] + px, origin[b][1]
            points += [(x, top - ENTRY), (x, top), (x, origin[b][1] + py)]
        else:
            x, top = placed[b].x, placed[b].y - placed[b].h / 2
            points += [(x, top - ENTRY), (x, top)]
    return Route(link, tuple(points), (src.x + LABEL_DX, band))


def _labels(routes: list[Route]) -> list[Route]:
    """Where each shape is written: beside the straight stretch out of the source, in the band
    below its rank. A source feeding several boxes the same tensor has it written once; the
    elements of a tuple read by different boxes are written one under the other."""
    seen: dict[tuple[str, str], int] = {}
    order: dict[str, int] = defaultdict(int)
    out = []
    for route in routes:
        key = (route.link.src, route.link.label)
        if key in seen or route.label_at is None:
            out.append(Route(route.link, route.points))
            continue
        seen[key] = order[route.link.src]
        order[route.link.src] += 1
        x, y = route.label_at
        out.append(Route(route.link, route.points, (x, y + seen[key] * LABEL_FONT * 1.3)))
    return out


def _fitted(layout: Layout) -> Layout:
    """Widen the picture where a shape label written left of its link would stick out."""
    spans = [
        (r.label_at[0], r.label_at[0] + text_width(r.link.label, LABEL_FONT))
        for r in layout.routes
        if r.label_at
    ]
    dx = max(0.0, MARGIN / 2 - min((a for a, _ in spans), default=0.0))
    width = max([layout.width + dx] + [b + dx + MARGIN / 2 for _, b in spans])
    if dx == 0 and width == layout.width:
        return layout
    return Layout(
        width,
        layout.height,
        [Placed(p.box, p.x + dx, p.y, p.w, p.h) for p in layout.boxes],
        [
            Route(
                r.link,
                tuple((x + dx, y) for x, y in r.points),
                r.label_at and (r.label_at[0] + dx, r.label_at[1]),
            )
            for r in layout.routes
        ],
        [(f, Rect(r.x0 + dx, r.y0, r.x1 + dx, r.y1)) for f, r in layout.frames],
    )
