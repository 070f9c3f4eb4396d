"""Recurrent layers: RNN, LSTM, GRU and their cells. ``input_size`` may be left out (inferred).

Shapes are torch's. A sequence layer reads ``[N, T, F]`` with ``batch_first: true`` and
``[T, N, F]`` with ``batch_first: false`` (torch's default), and returns a tuple:
``(output, h_n)`` (RNN, GRU) or ``(output, (h_n, c_n))`` (LSTM), where

* output: ``[N, T, D * H_out]`` (``[T, N, D * H_out]`` with batch_first false),
* h_n: ``[D * num_layers, N, H_out]`` and c_n: ``[D * num_layers, N, hidden_size]``, whatever
  batch_first says,

with ``D = 2`` if bidirectional else 1 and ``H_out = proj_size`` (LSTM, when > 0) else hidden_size.
The next layer reads the output sequence by default; ``h_n`` is element 1 of the tuple.

A spec's tensors carry the batch in dimension 0 (the spec's ``input`` is one sample, the batch is
put in front), so a layer reading a spec's ``[T, F]`` sequences needs ``batch_first: true``; with
``batch_first: false`` torch would read the batch as time (run the recurrence across samples) —
move time first with a Permute for that layout. Initial states are zeros (one input: the sequence).

MACs: one per weight-matrix element (``weight_ih``, ``weight_hh``, LSTM's ``weight_hr``) for each
time step of each sample, as Linear counts them; biases, gates and nonlinearities count 0.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Out, Shape, TupleOut, register
from torchspec.layers.fields import Bool, NonNegInt, PosInt, Probability

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]


class _RNNBase(Layer):
    positional: ClassVar[tuple[str, ...]] = ("input_size", "hidden_size")
    sample_ranks = (2,)
    sample_layout = "(T, features)"
    gates: ClassVar[int]  # gate blocks stacked in each weight: RNN 1, GRU 3, LSTM 4

    input_size: PosInt | None = None
    hidden_size: PosInt
    num_layers: PosInt = 1
    bias: Bool = True
    batch_first: Bool = False
    dropout: Probability = 0.0
    bidirectional: Bool = False

    @property
    def projection(self) -> int:
        return 0

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        features = self.check_given("input_size", self.input_size, shape[-1], None)
        batch, steps = (shape[0], shape[1]) if self.batch_first else (shape[1], shape[0])
        d = 2 if self.bidirectional else 1
        h, proj = self.hidden_size, self.projection
        h_out = proj or h
        rows = self.gates * h  # the gate blocks of one weight matrix
        weights = 0
        state: dict[str, Shape] = {}  # torch's order: per layer, per direction (reverse second)
        for layer in range(self.num_layers):
            width = features if layer == 0 else d * h_out  # layer l > 0 reads both directions
            weights += d * (rows * width + rows * h_out + proj * h)
            for suffix in ("", "_reverse")[:d]:
                tag = f"l{layer}{suffix}"
                state[f"weight_ih_{tag}"] = (rows, width)
                state[f"weight_hh_{tag}"] = (rows, h_out)
                if self.bias:
                    state[f"bias_ih_{tag}"] = (rows,)
                    state[f"bias_hh_{tag}"] = (rows,)
                if proj:
                    state[f"weight_hr_{tag}"] = (proj, h)
        biases = self.num_layers * d * 2 * rows if self.bias else 0
        output = (shape[0], shape[1], d * h_out)
        h_n = (d * self.num_layers, batch, h_out)
        hidden: Out = h_n
        if self.gates == 4:  # LSTM: (h_n, c_n)
            hidden = TupleOut((h_n, (d * self.num_layers, batch, h)))
        return Inferred(
            output,
            params=weights + biases,
            macs=batch * steps * weights,
            args={"input_size": features},
            state=state,
            outputs=TupleOut((output, hidden)),
        )


@register
class RNN(_RNNBase):
    """Elman RNN: ``(output, h_n)``; ``nonlinearity`` tanh or relu."""

    type: Literal["RNN"] = "RNN"
    gates = 1

    nonlinearity: Literal["tanh", "relu"] = "tanh"


@register
class LSTM(_RNNBase):
    """LSTM: ``(output, (h_n, c_n))``; ``proj_size > 0`` projects h to proj_size (output and h_n)."""

    type: Literal["LSTM"] = "LSTM"
    gates = 4

    proj_size: NonNegInt = 0

    @field_validator("proj_size")
    @classmethod
    def _smaller(cls, value: int, info: ValidationInfo) -> int:
        hidden = info.data.get("hidden_size")
        if hidden is not None and value >= hidden:
            raise PydanticCustomError(
                "proj_size",
                "proj_size ({proj}) has to be smaller than hidden_size ({hidden}); 0 means no projection",
                {"proj": value, "hidden": hidden},
            )
        return value

    @property
    def projection(self) -> int:
        return self.proj_size


@register
class GRU(_RNNBase):
    """GRU: ``(output, h_n)``."""

    type: Literal["GRU"] = "GRU"
    gates = 3


class _CellBase(Layer):
    """One time step: input ``[N, F]``, hidden state ``[N, hidden_size]`` (zeros at the start)."""

    positional: ClassVar[tuple[str, ...]] = ("input_size", "hidden_size")
    sample_ranks = (1,)
    sample_layout = "(features)"
    gates: ClassVar[int]

    input_size: PosInt | None = None
    hidden_size: PosInt
    bias: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        features = self.check_given("input_size", self.input_size, shape[-1], None)
        rows = self.gates * self.hidden_size
        weights = rows * (features + self.hidden_size)
        h = (shape[0], self.hidden_size)
        state: dict[str, Shape] = {"weight_ih": (rows, features), "weight_hh": (rows, self.hidden_size)}
        if self.bias:
            state.update(bias_ih=(rows,), bias_hh=(rows,))
        return Inferred(
            h,
            params=weights + (2 * rows if self.bias else 0),
            macs=shape[0] * weights,
            args={"input_size": features},
            state=state,
            outputs=TupleOut((h, h)) if self.gates == 4 else None,
        )


@register
class RNNCell(_CellBase):
    """One Elman RNN step: ``h'``."""

    type: Literal["RNNCell"] = "RNNCell"
    gates = 1

    nonlinearity: Literal["tanh", "relu"] = "tanh"


@register
class LSTMCell(_CellBase):
    """One LSTM step: ``(h', c')``, both ``[N, hidden_size]``."""

    type: Literal["LSTMCell"] = "LSTMCell"
    gates = 4


@register
class GRUCell(_CellBase):
    """One GRU step: ``h'``."""

    type: Literal["GRUCell"] = "GRUCell"
    gates = 3
