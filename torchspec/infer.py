"""Shape inference by arithmetic: every layer's output shape, parameters and MACs, without torch.

The walk follows the wiring (:mod:`torchspec.graph`): each layer gets the shapes of what it reads
(batch included) and its shape rule answers. The first rule that fails becomes a located error
naming each incoming shape and where it came from. What it returns, the rows and the report, is
:mod:`torchspec.shape_report` (re-exported here).
"""

from __future__ import annotations

import keyword
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torchspec.diagnose import quote, where
from torchspec.dtype_flow import dtype_flow
from torchspec.errors import Problem, SpecError
from torchspec.graph import Node, Read, Scope, wire
from torchspec.inputs import INDEX
from torchspec.layers import Shape, ShapeError, TupleOut, first_tensor, fmt_shape, tensors_of
from torchspec.layers.batch import batched_output
from torchspec.layers.fields import INT64_MAX
from torchspec.shape_errors import Value, shape_error
from torchspec.shape_report import LayerRow, ShapeReport, numel
from torchspec.source import Document
from torchspec.spec import Spec, load_spec

__all__ = ["LayerRow", "ShapeReport", "infer_shapes"]


def infer_shapes(spec: Spec | str | os.PathLike[str] | Mapping[str, Any], batch: int = 1) -> ShapeReport:
    """Infer every layer's output shape for a batch of ``batch`` samples; raises SpecError."""
    spec = load_spec(spec)
    doc = spec.document
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= INT64_MAX:
        raise SpecError.single(doc.file, f"batch must be an int in [1, 2**63 - 1], found {batch!r:.40}")
    scope = wire(spec.layers, doc)
    walk = _Walk(doc)
    given = Value(
        (batch, *spec.input_shape),
        "the spec's input",
        "input",
        dtype=spec.input_dtype,
        range=spec.input_range,
    )
    out = walk.scope(scope, given)
    if not out.batched:
        last = walk.rows[-1]
        raise SpecError(
            [
                doc.problem(
                    last.data_path,
                    f"the model's output {fmt_shape(last.output, batch=False)} ({out.came_from}) has "
                    "no batch dimension: it is computed from learned tensors alone, not from the input",
                    ["combine it with the input (Add, Mul, or ExpandBatch and Concat)"],
                )
            ]
        )
    if any(getattr(row.layer, "include_batch", False) for row in walk.rows):  # a fold of frames
        _check_batch(doc, spec, first_tensor(out.out), batch)
    if isinstance(out.out, TupleOut):
        walk.graphs.add("")  # the model returns its main output: a graph picks it out of the tuple
    return ShapeReport(
        spec,
        batch,
        walk.rows,
        scope,
        frozenset(walk.graphs),
        walk.reads,
        scope_warnings(scope),
        walk.sources,
        min(walk.index_bounds, default=None),
    )


class _Walk:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.rows: list[LayerRow] = []
        self.graphs: set[str] = set()  # containers compiled to a graph ("" for the top level)
        self.reads: dict[str, tuple[tuple[int, ...], ...]] = {}  # node path -> element path read
        self.sources: dict[str, tuple[str, ...]] = {}  # containers' From column
        self.index_bounds: list[int] = []  # num_embeddings of layers reading the spec's token ids

    def scope(self, scope: Scope, given: Value) -> Value:
        outs: list[Value] = []
        for pos, node in enumerate(scope.nodes):
            ins = [self._read(node, read, given if read.pos < 0 else outs[read.pos]) for read in node.reads]
            default = not node.explicit or [(r.pos, r.index) for r in node.reads] == [(pos - 1, ())]
            sources = None if default else tuple(v.label for v, _ in ins)
            self.reads[node.path] = tuple(index for _, index in ins)
            if node.scope is not None:
                value = self.scope(node.scope, ins[0][0])
                outs.append(replace(value, label=node.path))
                if sources is not None:
                    self.sources[node.path] = sources
            else:
                outs.append(self._leaf(node, [v for v, _ in ins], sources))
        if scope.wired or any(isinstance(v.out, TupleOut) for v in outs):  # learned tensors: wired
            self.graphs.add(scope.path)
            for node in scope.nodes:
                if keyword.iskeyword(node.name):
                    raise SpecError(
                        [
                            self.doc.problem(
                                (*node.data_path, "name"),
                                f"{quote(node.name)} is a Python keyword, which cannot name a layer in a "
                                "container with from: (it becomes an attribute in the generated forward)",
                                [f"rename it, e.g. {node.name}_"],
                            )
                        ]
                    )
        return outs[-1]

    def _read(self, node: Node, read: Read, value: Value) -> tuple[Value, tuple[int, ...]]:
        """The tensor ``read`` takes from ``value``: the element its index names, then the first
        tensor of whatever tuple remains (the default: an RNN's output sequence)."""
        out, index = value.out, list(read.index)
        for depth, i in enumerate(read.index):
            if not isinstance(out, TupleOut):
                taken = ".".join(read.text.split(".")[: depth + 1])
                raise SpecError(
                    [
                        self.doc.problem(
                            read.at,
                            f"{node.layer.type_name()} "
                            f"({where(node.data_path)}) reads {quote(read.text)}, but {quote(taken)} is one "
                            "tensor, not a tuple",
                            [f"write from: {taken}"],
                        )
                    ]
                )
            if not 0 <= i < len(out.items) or out.items[i] is None:
                n = len(out.items)
                raise SpecError(
                    [
                        self.doc.problem(
                            read.at,
                            f"{node.layer.type_name()} "
                            f"({where(node.data_path)}) reads {quote(read.text)}, but that output is a tuple "
                            f"of {n} with no tensor at index {i}",
                            [f"use an index in 0..{n - 1}"],
                        )
                    ]
                )
            out = out.items[i]  # type: ignore[assignment]
        while isinstance(out, TupleOut):
            index.append(0)
            out = out.items[0]  # type: ignore[assignment]
        suffix = "".join(f".{i}" for i in read.index)
        label = value.label + suffix
        if read.text:
            return replace(value, out=out, label=label, origin=value.came_from, via=read.text), tuple(index)
        return replace(value, out=out, label=label), tuple(index)

    def _leaf(self, node: Node, ins: list[Value], sources: tuple[str, ...] | None) -> Value:
        layer, data_path = node.layer, node.data_path
        shapes = [first_tensor(v.out) for v in ins]
        try:
            inferred = layer.infer_many(shapes)
            batched = batched_output(layer, shapes, [v.batched for v in ins])
            for shape in tensors_of(inferred.out):
                if numel(shape) > INT64_MAX:
                    raise ShapeError(f"the output {fmt_shape(shape)} has more elements than int64 holds")
        except ShapeError as err:
            raise shape_error(self.doc, layer, data_path, err, ins) from None
        except OverflowError as exc:  # e.g. a huge scale_factor overflowing a float: the user's values
            failed = ShapeError(f"the output for {{incoming}} is too large to compute ({exc})")
            raise shape_error(self.doc, layer, data_path, failed, ins) from None
        dtype = dtype_flow(self.doc, node.layer, node.data_path, ins, inferred, self.index_bounds)
        args = layer.torch_args(inferred)
        self.rows.append(
            LayerRow(
                node.path, data_path, layer, shapes[0] if shapes else (), inferred.shape,
                inferred.params, inferred.buffers, inferred.macs, args, inferred.state_bytes,
                inferred.state, tuple(shapes), inferred.out, sources, batched,
            )
        )  # fmt: skip
        range_ = ins[0].range if dtype == INDEX else None
        origin = (layer.type_name(), data_path)
        return Value(inferred.out, origin, node.path, batched=batched, dtype=dtype, range=range_)


def _check_batch(doc: Document, spec: Spec, output: Shape, batch: int) -> None:
    """The model must give one output per sample: a Reshape with ``include_batch`` that folded
    frames into the batch has to unfold them again."""
    if output[0] == batch:
        return
    message = (
        f"the model's output {list(output)} has {output[0]} in dimension 0, but the batch is {batch}: "
        "it must give one output per sample"
    )
    hint = (
        "a Reshape with include_batch: true that folded frames into the batch must unfold them "
        "(e.g. shape: [-1, T, F]) before the end"
    )
    problem = doc.problem(("layers", len(spec.layers) - 1), message, [hint])
    if not (doc.text or doc.value_pos):
        problem = replace(problem, line=0, col=0, source_line=None)
    raise SpecError([problem])


def scope_warnings(scope: Scope) -> list[Problem]:
    """The wiring warnings of a scope and every scope inside it."""
    out = list(scope.warnings)
    for node in scope.nodes:
        if node.scope is not None:
            out += scope_warnings(node.scope)
    return out
