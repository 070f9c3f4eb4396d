"""What shape inference returns: one :class:`LayerRow` per leaf layer and the :class:`ShapeReport`
of a whole spec (totals, the built model's ``state_dict`` shapes, memory, the JSON of ``check
--json``). :func:`torchspec.infer.infer_shapes` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchspec.errors import Problem
from torchspec.graph import Scope
from torchspec.inputs import INDEX
from torchspec.layers import Layer, Out, Shape, tensors_of
from torchspec.source import Path
from torchspec.spec import Spec
from torchspec.state_order import module_order

__all__ = ["BYTES_PER_ELEMENT", "LayerRow", "ShapeReport", "numel"]

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
    inputs: tuple[Shape, ...] = ()  # every input's shape (``input`` is the first)
    out: Out | None = None  # the whole output, a TupleOut for a layer returning a tuple
    sources: tuple[str, ...] | None = None  # what it reads, when not just the layer before it
    batched: bool = True  # the output carries the batch dimension (not a learned tensor's)

    @property
    def type(self) -> str:
        return self.layer.type_name()

    @property
    def summary(self) -> str:
        return self.layer.summary_of(self.args)


@dataclass(frozen=True)
class ShapeReport:
    """The result of :func:`infer_shapes` for one spec and batch size."""

    spec: Spec
    batch: int
    rows: list[LayerRow]  # leaf layers in file order
    scope: Scope | None = None  # the wiring
    graphs: frozenset[str] = frozenset()  # container paths compiled to a graph ("": the top level)
    reads: dict[str, tuple[tuple[int, ...], ...]] | None = None  # node path -> element paths read
    warnings: list[Problem] | None = None  # wiring warnings (unused outputs)
    container_sources: dict[str, tuple[str, ...]] | None = None  # containers with from:
    index_bound: int | None = None  # the smallest num_embeddings of the layers reading token ids

    @property
    def input_dtype(self) -> str:
        """``float32``, or ``int64`` for token ids (the spec's ``input: {dtype: int64}``)."""
        return self.spec.input_dtype

    @property
    def id_range(self) -> tuple[int, int] | None:
        """``[low, high)`` that valid int64 inputs come from (None for float32): the declared
        range, or up to the smallest ``num_embeddings`` reading them where ``high`` is not given.
        bench, build's meta check and the ``random`` source draw from it."""
        declared = self.spec.input_range
        if declared is None:
            return None
        low, high = declared
        if high is None:
            high = self.index_bound if self.index_bound is not None else low + 1
        return low, high

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input(self) -> Shape:
        return (self.batch, *self.spec.input_shape)

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
        ``{"features.0.weight": (64, 3, 11, 11), ...}``, in the module's order (a container's own
        learned tensors before its children, as torch lists a module's parameters first)."""
        return {
            f"{row.path}.{name}" if name else row.path: shape
            for row in module_order(self.rows)
            for name, shape in row.state.items()
        }

    @property
    def param_bytes(self) -> int:
        return sum(r.state_bytes for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for one forward pass of the batch (float32); a learned
        tensor is counted with the parameters."""
        outs = (r.out or r.output for r in self.rows if not r.layer.learned_tensor)
        return sum(numel(s) for out in outs for s in tensors_of(out)) * BYTES_PER_ELEMENT

    def _ids_json(self) -> dict[str, Any]:
        """``input_dtype`` and ``input_range`` for token-id inputs (float specs keep their keys)."""
        declared = self.spec.input_range
        return {} if declared is None else {"input_dtype": INDEX, "input_range": list(declared)}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": list(self.input),
            **self._ids_json(),
            "output": list(self.output),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "layers": [_row_json(r) for r in self.rows],
        }


def _row_json(row: LayerRow) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": row.path,
        "type": row.type,
        "output": list(row.output),
        "params": row.params,
        "macs": row.macs,
    }
    if row.sources is not None:
        data["from"] = list(row.sources)
    return data


def numel(shape: Shape) -> int:
    """Elements of a tensor of ``shape``."""
    n = 1
    for d in shape:
        n *= d
    return n
