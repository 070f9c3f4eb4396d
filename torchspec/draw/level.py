"""One level of the layout: the children of one frame (or of the whole picture) placed by grandalf's
Sugiyama layout, then spread, ranked and framed by hand (see :mod:`torchspec.draw.layout`)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from torchspec.draw.diagram import Frame
from torchspec.draw.geometry import (
    DUMMY_GAP,
    FRAME_PAD,
    FRAME_TITLE,
    MARGIN,
    PORT_GAP,
    TITLE_FONT,
    X_GAP,
    Y_GAP,
    text_width,
)

__all__ = ["Level", "frame_level", "place_level", "port"]


class _View:
    """grandalf's vertex view: a size in, a centre out."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


@dataclass
class Level:
    """One frame's inside (or the whole picture's), in coordinates relative to its top-left."""

    w: float = 0.0
    h: float = 0.0
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # child (or port) -> centre
    bends: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    bands: dict[str, float] = field(default_factory=dict)  # child -> y of the shape labels below it


def port(frame: str) -> str:
    return f"@in:{frame}"


def place_level(
    items: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]]
) -> Level:
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
    level = Level()
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


def frame_level(
    level: Level, sizes: dict[str, tuple[float, float]], labels: list[tuple[float, float]], frame: Frame
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
        entry = [x for n, (x, _) in level.at.items() if n not in sizes]
        if len(entry) == 1:  # centred on its port: the link from above comes straight down into it
            half = max(entry[0] - left, right - entry[0])
            left, right = entry[0] - half, entry[0] + half
    else:
        left, top, right, bottom = x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN
    level.at = {n: (x - left, y - top) for n, (x, y) in level.at.items()}
    level.bends = {e: [(x - left, y - top) for x, y in ps] for e, ps in level.bends.items()}
    level.bands = {n: y - top for n, y in level.bands.items()}
    level.w, level.h = right - left, bottom - top
