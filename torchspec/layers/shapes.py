"""What shape rules work with: shapes (batch included), what a rule returns (:class:`Inferred`), how
it fails (:class:`ShapeError`), and the small helpers rules share for sizes and messages.

Part of the layer contract (:mod:`torchspec.layers.base` gathers it); nothing here knows a layer.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, Union

from torchspec.layers.fields import INT64_MAX

__all__ = [
    "SPATIAL_LAYOUTS",
    "Inferred",
    "Out",
    "Shape",
    "ShapeError",
    "TupleOut",
    "checked_dim",
    "expand",
    "first_tensor",
    "fmt_shape",
    "fmt_size",
    "prod",
    "spatial_name",
    "tensors_of",
]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TupleOut:
    """A layer output that is a tuple (LSTM's ``(output, (h_n, c_n))``, Chunk's pieces).

    ``items`` hold shapes or nested tuples; an item may be None where torch returns None
    (MultiheadAttention's weights with ``need_weights: false``).
    """

    items: "tuple[Out | None, ...]"  # Out is defined below (it names this class)


# What a layer produces: one tensor (its shape, batch included) or a tuple of them.
Out: TypeAlias = Union[Shape, TupleOut]  # noqa: UP007 (a runtime alias with a forward reference)


def first_tensor(out: Out) -> Shape:
    """The main output: the tensor itself, or recursively the first element of a tuple.

    It is what the next layer reads by default (an RNN's output sequence, a Chunk's first piece).
    """
    while isinstance(out, TupleOut):
        out = out.items[0]  # type: ignore[assignment]
    return out


def tensors_of(out: Out | None) -> list[Shape]:
    """Every tensor shape in an output, depth first (for activation memory)."""
    if out is None:
        return []
    if isinstance(out, TupleOut):
        return [s for item in out.items for s in tensors_of(item)]
    return [out]


class ShapeError(Exception):
    """A shape rule failed. ``field`` names the parameter to point at (None: the layer itself).

    ``message`` may contain ``{incoming}``, replaced by the incoming shape and where it came from;
    a layer with several inputs writes ``{in0}``, ``{in1}``, ... for each input the same way.
    """

    def __init__(self, message: str, *, field: str | None = None, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hints = tuple(hints)


@dataclass(frozen=True)
class Inferred:
    """What a shape rule computes for one layer on one input shape (batch included)."""

    shape: Shape  # the main output: the tensor, or the first tensor of a tuple output
    params: int = 0  # trainable parameter elements
    buffers: int = 0  # buffer elements (running statistics)
    int64_buffers: int = 0  # of which int64 (BatchNorm's num_batches_tracked): 8 bytes, not 4
    macs: int = 0  # multiply-accumulates of one forward pass over the whole batch
    args: dict[str, Any] = field(default_factory=dict)  # values inferred for the constructor
    # the layer's state_dict: tensor name (relative to the layer) -> shape, in torch's order
    state: dict[str, Shape] = field(default_factory=dict)

    outputs: TupleOut | None = None  # the whole output when torch returns a tuple (else None)

    @property
    def out(self) -> Out:
        """The whole output: ``outputs`` for a tuple-returning layer, else ``shape``."""
        return self.outputs if self.outputs is not None else self.shape

    @property
    def state_bytes(self) -> int:
        """Bytes of the state_dict in float32: parameters and buffers, int64 ones at 8 bytes."""
        return (self.params + self.buffers + self.int64_buffers) * 4


def fmt_shape(shape: Sequence[int], batch: bool = True) -> str:
    """``[N, 64, 16]``: the batch dimension is written N in messages."""
    items = ["N", *map(str, shape[1:])] if batch else [str(d) for d in shape]
    return "[" + ", ".join(items) + "]"


# Per-sample layouts and spatial dimension names by the number of spatial dimensions.
SPATIAL_LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
_SPATIAL_NAMES = {1: "L", 2: "HW", 3: "DHW"}


def spatial_name(index: int, rank: int) -> str:
    """``H`` for spatial dimension 0 of a 2-d layer: what messages call a dimension."""
    return _SPATIAL_NAMES[rank][index]


def fmt_size(values: tuple[int, ...]) -> str:
    """``3`` when every dimension has the same size, else ``[1, 2, 2]``."""
    return str(values[0]) if len(set(values)) == 1 else str(list(values))


def expand(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """torch's ``_ntuple``: an int stands for the same value on every spatial dimension."""
    if isinstance(value, int):
        return (value,) * rank
    return tuple(value)


def prod(values: Sequence[int]) -> int:
    return math.prod(values)


def checked_dim(value: int, what: str) -> int:
    """A computed dimension must be positive and fit torch's int64."""
    if value > INT64_MAX:
        raise ShapeError(f"{what} would be {value}, beyond torch's int64 limit")
    return value
