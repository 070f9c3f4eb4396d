"""What ``torchspec draw`` shows, before any geometry: boxes, links labelled with shapes, frames.

A :class:`~torchspec.infer.ShapeReport` (shapes by arithmetic, no torch) becomes a
:class:`Diagram`: one box per leaf layer (its type and key arguments, its name), one box per
container deeper than ``depth`` (collapsed: name, block, parameters, output shape), the input and
the output; a link for every value a layer reads, labelled with the shape flowing along it; a frame
for every container drawn open. Links that do not come from the previous sibling (``from:``
skips, merges' other inputs) are marked ``skip``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchspec.graph import Node, Read, Scope
from torchspec.infer import LayerRow, ShapeReport
from torchspec.layers import Out, TupleOut, first_tensor, fmt_shape

__all__ = ["INPUT", "OUTPUT", "Box", "Diagram", "Frame", "Link", "build_diagram", "key_args"]

INPUT, OUTPUT = "@input", "@output"  # box ids no layer path can take

# sizes torch infers from the incoming shape: the edge label shows them already
_INFERRED = {
    "in_channels", "in_features", "num_features", "num_channels", "input_size", "embed_dim",
    "d_model", "in1_features", "in2_features",
}  # fmt: skip
_NOISE = {"inplace", "bias", "eps", "momentum", "batch_first", "affine", "track_running_stats"}
_SHORT = {"kernel_size": "k", "stride": "s", "padding": "p", "dilation": "d", "groups": "g"}
MAX_ARGS_CHARS = 34  # a box's argument line is cut here (the table of `torchspec check` has them all)


@dataclass(frozen=True)
class Box:
    """A node of the picture. ``kind``: input, output, layer, merge (several inputs) or block (a
    collapsed container); ``lines``: its text, the first line in bold; ``family`` picks a colour."""

    id: str
    kind: str
    lines: tuple[str, ...]
    frames: tuple[str, ...] = ()  # the frames it sits in, outermost first
    family: str = "other"


@dataclass(frozen=True)
class Link:
    """A value flowing from box ``src`` to box ``dst`` with its shape as ``label``."""

    src: str
    dst: str
    label: str
    skip: bool = False  # read with from: from something other than the previous sibling


@dataclass(frozen=True)
class Frame:
    """An open container: a rectangle around its boxes, titled with its path and block."""

    id: str
    title: str
    frames: tuple[str, ...] = ()  # the frames it sits in, outermost first


@dataclass
class Diagram:
    name: str
    boxes: list[Box] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

    @property
    def layer_count(self) -> int:
        return sum(b.kind in ("layer", "merge", "block") for b in self.boxes)


@dataclass(frozen=True)
class _End:
    """Where a value comes from: a box, its whole output, and whether it carries the batch in front
    (else its shape is written with sizes, not N)."""

    box: str
    out: Out
    batched: bool = True
    skip: bool = False  # a container's input read by a skip: its first layers' links are skips too


def build_diagram(report: ShapeReport, depth: int | None = None, batch_as_n: bool = True) -> Diagram:
    """The diagram of ``report``; containers nested deeper than ``depth`` (top-level ones are at
    depth 1; None: no limit) are collapsed into one box. Shapes show the batch as ``N`` unless
    ``batch_as_n`` is false (then the report's batch size)."""
    if report.scope is None:  # pragma: no cover - infer_shapes always wires
        raise ValueError("the report has no wiring")
    walk = _Walk(report, depth, batch_as_n)
    shape = fmt_shape(report.input) if batch_as_n else str(list(report.input))
    walk.diagram.boxes.append(Box(INPUT, "input", ("input", shape), family="io"))
    last = walk.scope(report.scope, _End(INPUT, report.input), (), 0)
    walk.diagram.boxes.append(Box(OUTPUT, "output", ("output", walk.shape(last)), family="io"))
    walk.diagram.links.append(Link(last.box, OUTPUT, walk.shape(last)))
    return walk.diagram


class _Walk:
    def __init__(self, report: ShapeReport, depth: int | None, batch_as_n: bool) -> None:
        self.report = report
        self.depth = depth
        self.batch_as_n = batch_as_n
        self.rows = {row.path: row for row in report.rows}
        self.block_uses = report.spec.document.block_uses
        self.diagram = Diagram(report.name)

    def shape(self, end: _End, index: tuple[int, ...] = ()) -> str:
        """The label of the tensor ``end`` gives (``index``: an element of a tuple output). An
        element of a tuple (an RNN's h_n) may hold the batch elsewhere: its sizes are written out."""
        tensor = first_tensor(_element(end.out, index))
        if end.batched and self.batch_as_n and not index and not isinstance(end.out, TupleOut):
            return fmt_shape(tensor)
        return str(list(tensor))

    def scope(self, scope: Scope, given: _End, frames: tuple[str, ...], level: int) -> _End:
        ends: list[_End] = []
        for pos, node in enumerate(scope.nodes):
            reads = [(given if read.pos < 0 else ends[read.pos], read) for read in node.reads]
            if node.scope is None:
                ends.append(self._leaf(node, reads, pos, frames))
            elif self.depth is not None and level + 1 > self.depth:
                ends.append(self._collapsed(node, reads, pos, frames))
            else:
                inner = (*frames, node.path)
                self.diagram.frames.append(Frame(node.path, self._title(node), frames))
                end, read = reads[0] if reads else (given, None)
                start = _End(end.box, end.out, end.batched, _skip(read, pos, False, given) if read else False)
                if read is not None and read.index:  # an element of a tuple: sizes written out
                    start = _End(end.box, _element(end.out, read.index), False, start.skip)
                ends.append(self.scope(node.scope, start, inner, level + 1))
        return ends[-1]

    def _links(self, node: Node, reads: list[tuple[_End, Read]], pos: int, labels: list[str]) -> None:
        for i, ((end, read), label) in enumerate(zip(reads, labels)):
            skip = _skip(read, pos, i == 0 and len(reads) > 1, end)
            self.diagram.links.append(Link(end.box, node.path, label, skip))

    def _leaf(self, node: Node, reads: list[tuple[_End, Read]], pos: int, frames: tuple[str, ...]) -> _End:
        row = self.rows[node.path]
        labels = [_read_label(self.shape(end, read.index), read) for end, read in reads]
        self._links(node, reads, pos, labels)
        kind = "merge" if len(reads) > 1 else "layer"
        lines = (key_args(row),) if not node.layer.name else (node.layer.name, key_args(row))
        self.diagram.boxes.append(Box(node.path, kind, lines, frames, _family(row.type, kind)))
        return _End(node.path, row.out if row.out is not None else row.output, row.batched)

    def _collapsed(
        self, node: Node, reads: list[tuple[_End, Read]], pos: int, frames: tuple[str, ...]
    ) -> _End:
        inside = [row for row in self.report.rows if row.path.startswith(node.path + ".")]
        labels = [_read_label(self.shape(end, read.index), read) for end, read in reads]
        self._links(node, reads, pos, labels)
        last = inside[-1]  # a container's output is its last layer's (rows are in walk order)
        end = _End(node.path, last.out if last.out is not None else last.output, last.batched)
        params = sum(row.params for row in inside)
        block = self._block(node) or "Sequential"
        lines = (node.path, f"{block} ({len(inside)} layers)", f"{params:,} params", f"→ {self.shape(end)}")
        self.diagram.boxes.append(Box(node.path, "block", lines, frames, "block"))
        return end

    def _block(self, node: Node) -> str | None:
        """The block a container was written as (``type: bottleneck``), as the expansion recorded it."""
        assert node.scope is not None
        use = self.block_uses.get(node.scope.data_path)
        return use[0] if use else None

    def _title(self, node: Node) -> str:
        block = self._block(node)
        return f"{node.path} · {block}" if block and block != node.name else node.path


def _skip(read: Read, pos: int, main: bool, end: _End) -> bool:
    """A skip: ``from:`` reading something other than the previous sibling, where it is not a
    merge's first input (``Add from: [bn3, downsample]``: bn3 is the main path), or a container's
    input read by a skip."""
    if read.pos < 0 and not read.text:
        return end.skip
    return bool(read.text) and read.pos != pos - 1 and not main


def _read_label(shape: str, read: Read) -> str:
    """An element of a tuple output is named with the shape: ``lstm.1.0 [2, N, 64]``."""
    return f"{read.text} {shape}" if read.index else shape


def _element(out: Out, index: tuple[int, ...]) -> Out:
    for i in index:
        if isinstance(out, TupleOut) and out.items[i] is not None:
            out = out.items[i]  # type: ignore[assignment]
    return out


def key_args(row: LayerRow) -> str:
    """``Conv3d 64, k3, p1``: the type and the arguments that matter in a picture (sizes torch
    infers and flags like ``inplace`` are left out); cut at :data:`MAX_ARGS_CHARS` characters.
    torchspec's own flags go before the type, never cut: ``causal MultiheadAttention 4``."""
    layer = row.layer
    shown: list[str] = []
    for key, value in row.args.items():
        if key in _INFERRED or key in _NOISE or _trivial(key, value) or key in layer.spec_fields:
            continue
        text = _value(value, window=key in _SHORT)
        if key in layer.positional:
            shown.append(text)
        else:
            shown.append(f"{_SHORT[key]}{text}" if key in _SHORT else f"{key}={text}")
    args = ", ".join(shown)
    if len(args) > MAX_ARGS_CHARS:
        args = args[: MAX_ARGS_CHARS - 1] + "…"
    kind = " ".join([*(k for k in layer.spec_fields if row.args.get(k) is True), row.type])  # causal X
    return f"{kind} {args}" if args else kind


def _trivial(key: str, value: Any) -> bool:
    """A window argument at its no-op value (stride 1, padding 0...), written or not."""
    no_op = {"stride": 1, "dilation": 1, "groups": 1, "padding": 0}.get(key)
    values = value if isinstance(value, (tuple, list)) else [value]
    return no_op is not None and all(v == no_op for v in values)


def _value(value: Any, window: bool = False) -> str:
    """A window size (``window``) as 3 for (3, 3, 3) and 1x2x2 for (1, 2, 2); other sequences as
    (768, -1); a nested layer by its type."""
    if isinstance(value, (tuple, list)):
        items = [_value(v) for v in value]
        if window and items and all(isinstance(v, int) for v in value):
            return items[0] if len(set(items)) == 1 else "x".join(items)
        return f"({', '.join(items)})"
    if isinstance(value, float):
        return f"{value:g}"
    type_name = getattr(value, "type_name", None) or getattr(getattr(value, "layer", None), "type_name", None)
    if callable(type_name):
        return str(type_name())
    return str(value)


_ACTIVATIONS = ("ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "ELU", "Mish", "Softmax", "Hard", "Softplus")


def _family(type_name: str, kind: str) -> str:
    """A colour group: merge, conv, norm, pool, act, linear, dropout, other."""
    if kind == "merge":
        return "merge"
    for family, marks in (
        ("conv", ("Conv",)),
        ("norm", ("Norm",)),
        ("pool", ("Pool", "Unpool")),
        ("dropout", ("Dropout", "StochasticDepth")),
        ("linear", ("Linear", "Embedding", "LSTM", "GRU", "RNN", "Attention", "Transformer")),
        ("act", _ACTIVATIONS),
    ):
        if any(mark in type_name for mark in marks):
            return family
    return "other"
