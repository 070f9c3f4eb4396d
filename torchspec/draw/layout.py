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

from collections import defaultdict

from torchspec.draw.diagram import Diagram, Frame, Link
from torchspec.draw.geometry import (
    ENTRY,
    LABEL_DX,
    LABEL_FONT,
    MARGIN,
    Layout,
    Placed,
    Rect,
    Route,
    box_size,
    text_width,
)
from torchspec.draw.level import Level, frame_level, place_level, port

__all__ = ["Layout", "lay_out"]


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
        hop += [(dst[k], port(dst[k]), _child(link.dst, dst, k + 1)) for k in range(len(common), len(dst))]
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
    levels: dict[str, Level] = {}
    for frame in [*sorted(diagram.frames, key=lambda f: -len(f.frames)), Frame("", "")]:
        edges = list(dict.fromkeys((a, b) for hop in hops for lv, a, b in hop if lv == frame.id))
        level = place_level(children[frame.id], edges, sizes)

        def exit_x(child: str, level: Level = level) -> float:
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
        frame_level(level, sizes, label_spans, frame)
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


def _origins(
    levels: dict[str, Level], sizes: dict[str, tuple[float, float]], children: dict[str, list[str]]
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
    levels: dict[str, Level],
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
            px, py = levels[b].at[port(b)]
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
