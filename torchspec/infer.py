"""Shape inference by arithmetic: every layer's output shape, parameters and MACs, without torch.

The walk feeds each layer the previous layer's output (batch included) and asks its shape rule.
The first rule that fails becomes a located error naming the incoming shape and where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from torchspec.diagnose import node_at, where
from torchspec.errors import SpecError
from torchspec.layers import Layer, Sequential, Shape, ShapeError, fmt_shape
from torchspec.layers.fields import INT64_MAX
from torchspec.source import Document, Path
from torchspec.spec import Spec, load_spec, walk_layers

__all__ = ["LayerRow", "ShapeReport", "infer_shapes"]

BYTES_PER_ELEMENT = 4  # float32


@dataclass(frozen=True)
class LayerRow:
    """One leaf layer: ``path`` is its dotted name in ``named_modules()`` ("features.0")."""

    path: str
    data_path: Path
    layer: Layer
    input: Shape
    output: Shape
    params: int
    buffers: int
    macs: int
    args: dict[str, Any]  # keyword arguments for torch.nn.<type>
    state_bytes: int  # the layer's state_dict in float32 (int64 buffers at 8 bytes)
    state: dict[str, Shape]  # the layer's state_dict: name relative to the layer -> shape

    @property
    def type(self) -> str:
        return self.layer.type_name()

    @property
    def summary(self) -> str:
        from torchspec.layers import Inferred

        return self.layer.summary(Inferred(self.output, args=self.args))


@dataclass(frozen=True)
class ShapeReport:
    """The result of :func:`infer_shapes` for one spec and batch size."""

    spec: Spec
    batch: int
    rows: list[LayerRow]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input(self) -> Shape:
        return (self.batch, *self.spec.input)

    @property
    def output(self) -> Shape:
        return self.rows[-1].output if self.rows else self.input

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return self.params  # a freshly built module trains every parameter

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def state_shapes(self) -> dict[str, Shape]:
        """The built model's ``state_dict()`` keys and shapes, known without torch:
        ``{"features.0.weight": (64, 3, 11, 11), ...}``, in the module's order."""
        return {f"{row.path}.{name}": shape for row in self.rows for name, shape in row.state.items()}

    @property
    def param_bytes(self) -> int:
        return sum(r.state_bytes for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for one forward pass of the batch (float32)."""
        return sum(_numel(r.output) for r in self.rows) * BYTES_PER_ELEMENT

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": list(self.input),
            "output": list(self.output),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "layers": [
                {
                    "path": r.path,
                    "type": r.type,
                    "output": list(r.output),
                    "params": r.params,
                    "macs": r.macs,
                }
                for r in self.rows
            ],
        }


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def infer_shapes(spec: Spec | str | os.PathLike[str] | Mapping[str, Any], batch: int = 1) -> ShapeReport:
    """Infer every layer's output shape for a batch of ``batch`` samples; raises SpecError."""
    spec = load_spec(spec)
    doc = spec.document
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= INT64_MAX:
        raise SpecError.single(doc.file, f"batch must be an int in [1, 2**63 - 1], found {batch!r:.40}")
    shape: Shape = (batch, *spec.input)
    came_from = "the spec's input"
    rows: list[LayerRow] = []
    for path, data_path, layer in walk_layers(spec.layers):
        if isinstance(layer, Sequential):
            continue
        try:
            out = layer.infer(shape)
            if _numel(out.shape) > INT64_MAX:
                raise ShapeError(f"the output {fmt_shape(out.shape)} has more elements than int64 holds")
        except ShapeError as err:
            raise _shape_error(doc, layer, data_path, err, shape, came_from) from None
        except OverflowError as exc:  # e.g. a huge scale_factor overflowing a float: the user's values
            failed = ShapeError(f"the output for {{incoming}} is too large to compute ({exc})")
            raise _shape_error(doc, layer, data_path, failed, shape, came_from) from None
        args = layer.torch_args(out)
        rows.append(
            LayerRow(
                path, data_path, layer, shape, out.shape, out.params, out.buffers, out.macs, args,
                out.state_bytes, out.state,
            )
        )  # fmt: skip
        shape = out.shape
        came_from = f"after {layer.type_name()} at {where(data_path)}"
    return ShapeReport(spec, batch, rows)


def _shape_error(
    doc: Document, layer: Layer, data_path: Path, err: ShapeError, shape: Shape, came_from: str
) -> SpecError:
    """The failed rule as a located error: ``LAYER (PATH): MESSAGE`` at the layer.

    A shape error is a conflict between a layer and the shape flowing into it, so it points at the
    layer; in a block-style layer spread over several lines it points at the line of the blamed
    parameter instead, the line to edit.
    """
    message = f"{layer.type_name()} ({where(data_path)}): " + err.message.replace(
        "{incoming}", f"{fmt_shape(shape)} ({came_from})"
    )
    target = data_path
    node = node_at(doc.data, data_path)
    if err.field and isinstance(node, dict) and err.field in node:
        field_path = (*data_path, err.field)
        # its own line to edit, or its value came from --set (then the message names the --set)
        if doc.override_of(field_path) or doc.pos(field_path).line != doc.pos(data_path).line:
            target = field_path
    problem = doc.problem(target, message, err.hints)
    if not (doc.text or doc.value_pos):  # a spec given as a mapping: no file positions
        problem = replace(problem, line=0, col=0, source_line=None)
    return SpecError([problem])
