"""Attention: MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer.

Shapes are torch's: ``[N, L, E]`` with ``batch_first: true``, ``[L, N, E]`` with ``batch_first:
false`` (torch's default). A spec's tensors carry the batch in dimension 0, so on a spec's ``[T, F]``
sequences set ``batch_first: true`` (see torchspec.layers.recurrent). ``embed_dim`` / ``d_model``
may be left out and are then inferred from the query's last dimension.

MACs: one per weight-matrix element of the projections (and of the feed-forward Linears) for each
position, plus the attention products: ``Q K^T`` and ``A V`` each count ``L * S * embed_dim`` per
sample (all heads together, S the key length including ``add_bias_kv``/``add_zero_attn``'s extra
position). Softmax, biases, norms, dropout and activations count 0.

``causal: true`` (torchspec's field, not a torch constructor argument: torch takes masks in
forward) makes self-attention causal, position t reading positions 0 .. t only: the layer becomes
torchspec's subclass of the torch class (:mod:`torchspec.nn_attention`), with the same arguments
and state_dict, whose forward passes ``generate_square_subsequent_mask(L)`` with ``is_causal=True``.
Shapes, parameters and MACs are unchanged: MACs count torch's dense products (the masked half is
computed, then masked), not the half a causal kernel could skip.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, TupleOut, register
from torchspec.layers.fields import Bool, PosFloat, PosInt, Probability

__all__ = [
    "Causal",
    "MultiheadAttention",
    "TransformerArgs",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
]


def _check_sequence(shape: Shape, what: str) -> None:
    """``what`` names the input in the message: "the query {in0}"."""
    if len(shape) != 3:
        raise ShapeError(
            f"{what} must be a batch of sequences, rank 3 ([N, L, E] or [L, N, E]), but has rank "
            f"{len(shape) - 1} per sample",
            hints=["the spec's input is one sample without the batch dimension, e.g. [T, F]"],
        )


def _heads(field: str, embed: int, heads: int, heads_field: str) -> None:
    if embed % heads:
        raise ShapeError(
            f"{heads_field}={heads} must divide {field}={embed} (each head gets {field} / "
            f"{heads_field} features)",
            field=heads_field,
        )


def _batch_and_length(shape: Shape, batch_first: bool) -> tuple[int, int]:
    return (shape[0], shape[1]) if batch_first else (shape[1], shape[0])


def _same_batch(what: str, shape: Shape, batch: int, batch_first: bool, first: str) -> None:
    got, _ = _batch_and_length(shape, batch_first)
    if got != batch:
        where = "dim 0" if batch_first else "dim 1 (batch_first: false)"
        raise ShapeError(
            f"{what} has batch size {got} in {where} but {first} has {batch}; they must match",
            field="from",
        )


def _attention_state(
    e: int, kdim: int, vdim: int, bias: bool, bias_kv: bool, prefix: str = ""
) -> dict[str, Shape]:
    """MultiheadAttention's state_dict in torch's order: its own parameters, then out_proj's."""
    state: dict[str, Shape] = {}
    if kdim == e and vdim == e:
        state["in_proj_weight"] = (3 * e, e)
    else:
        state.update(q_proj_weight=(e, e), k_proj_weight=(e, kdim), v_proj_weight=(e, vdim))
    if bias:
        state["in_proj_bias"] = (3 * e,)
    if bias_kv:
        state.update(bias_k=(1, 1, e), bias_v=(1, 1, e))
    state["out_proj.weight"] = (e, e)
    if bias:
        state["out_proj.bias"] = (e,)
    return {prefix + name: shape for name, shape in state.items()}


def _linear_state(name: str, out: int, inp: int, bias: bool) -> dict[str, Shape]:
    return {f"{name}.weight": (out, inp), **({f"{name}.bias": (out,)} if bias else {})}


class Causal(Layer):
    """A layer with torchspec's ``causal`` field: ``causal: true`` builds ``torchspec.nn.Causal<type>``."""

    spec_fields: ClassVar[tuple[str, ...]] = ("causal",)

    causal: Annotated[
        Bool,
        Field(
            description="torchspec's own (torch passes masks in forward): causal self-attention, "
            "position t attends to positions 0 .. t only (a GPT-style decoder)"
        ),
    ] = False

    @classmethod
    def torch_class(cls, args: dict[str, Any]) -> tuple[str, str]:
        if args.get("causal"):
            return "torchspec.nn", f"Causal{cls.type_name()}"
        return super().torch_class(args)


@register
class MultiheadAttention(Causal):
    """``(attn_output, attn_weights)`` from (query, key, value), torch's need_weights default.

    Inputs: one (``from: x``, self-attention: query = key = value = x), two (query, then key =
    value: cross-attention) or three (query, key, value). attn_output has the query's shape;
    attn_weights is ``[N, L, S]`` (averaged over heads, batch first whatever batch_first says).
    ``causal: true`` needs the query and the key to have one length (L == S).
    ``kdim``/``vdim`` left out are inferred from the key's and value's last dimension; when both
    equal embed_dim the projections are one ``in_proj_weight [3E, E]``, else ``q/k/v_proj_weight``.
    """

    type: Literal["MultiheadAttention"] = "MultiheadAttention"
    positional: ClassVar[tuple[str, ...]] = ("embed_dim", "num_heads")
    arity = (1, 3)
    sample_ranks = (2,)
    sample_layout = "(L, E)"

    embed_dim: PosInt | None = None
    num_heads: PosInt
    dropout: Probability = 0.0
    bias: Bool = True
    add_bias_kv: Bool = False
    add_zero_attn: Bool = False
    kdim: PosInt | None = None
    vdim: PosInt | None = None
    batch_first: Bool = False

    @classmethod
    def torch_inputs(cls, count: int) -> tuple[int, ...]:
        return {1: (0, 0, 0), 2: (0, 1, 1)}.get(count, tuple(range(count)))

    def infer(self, shape: Shape) -> Inferred:
        return self.infer_many([shape])

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        order = self.torch_inputs(len(shapes))
        query, key, value = (shapes[i] for i in order)
        names = [f"the {what} {{in{i}}}" for what, i in zip(("query", "key", "value"), order)]
        for name, shape in zip(names, (query, key, value)):
            _check_sequence(shape, name)
        e = self.check_given("embed_dim", self.embed_dim, query[-1], None)
        _heads("embed_dim", e, self.num_heads, "num_heads")
        kdim = self._side_dim("kdim", self.kdim, key, names[1])
        vdim = self._side_dim("vdim", self.vdim, value, names[2])
        batch, length = _batch_and_length(query, self.batch_first)
        _same_batch(names[1], key, batch, self.batch_first, names[0])
        _same_batch(names[2], value, batch, self.batch_first, names[0])
        _, source = _batch_and_length(key, self.batch_first)
        if _batch_and_length(value, self.batch_first)[1] != source:
            raise ShapeError(f"{names[1]} and {names[2]} must have the same sequence length", field="from")
        if self.causal and source != length:
            raise ShapeError(
                f"causal: true masks self-attention (position t reads keys 0 .. t), but {names[0]} "
                f"has {length} positions and {names[1]} {source}; they must be equal",
                field="causal",
            )
        same = kdim == e and vdim == e
        weights = e * e + e * kdim + e * vdim  # q, k, v projections
        params = weights + e * e  # + out_proj
        if self.bias:
            params += 3 * e + e
        if self.add_bias_kv:
            params += 2 * e
        keys = source + self.add_bias_kv + self.add_zero_attn  # the extra key positions
        macs = batch * (length * e * e + source * e * (kdim + vdim) + 2 * length * keys * e + length * e * e)
        args: dict[str, int] = {"embed_dim": e}
        if not same:
            args.update(kdim=kdim, vdim=vdim)
        attn = (batch, length, keys)
        state = _attention_state(e, kdim, vdim, self.bias, self.add_bias_kv)
        return Inferred(
            query, params=params, macs=macs, args=args, state=state, outputs=TupleOut((query, attn))
        )

    def _side_dim(self, field: str, given: int | None, shape: Shape, name: str) -> int:
        if given is not None and given != shape[-1]:
            raise ShapeError(
                f"{field} is {given} but {name} has {shape[-1]} features; "
                f"set {field}: {shape[-1]} or leave it out",
                field=field,
            )
        return shape[-1]


class TransformerArgs(Causal):
    """The constructor arguments torch's Transformer classes share (nhead comes with each), and
    torchspec's ``causal``: the (target's) self-attention is causal."""

    sample_ranks = (2,)
    sample_layout = "(L, E)"

    d_model: PosInt | None = None
    dim_feedforward: PosInt = 2048
    dropout: Probability = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    layer_norm_eps: PosFloat = 1e-5
    batch_first: Bool = False
    norm_first: Bool = False
    bias: Bool = True


class _TransformerLayer(TransformerArgs):
    positional: ClassVar[tuple[str, ...]] = ("d_model", "nhead")

    nhead: PosInt

    def _block(self, shape: Shape) -> tuple[int, int, int, int, int]:
        """(d_model, batch, length, params, MACs) of self-attention + feed-forward + 2 norms."""
        _check_sequence(shape, "the input {in0}")
        e = self.check_given("d_model", self.d_model, shape[-1], None)
        _heads("d_model", e, self.nhead, "nhead")
        batch, length = _batch_and_length(shape, self.batch_first)
        ff, b = self.dim_feedforward, int(self.bias)
        attention = 4 * e * e + 4 * e * b
        feedforward = 2 * e * ff + (ff + e) * b
        params = attention + feedforward + 2 * self._norm(e)
        macs = batch * (4 * length * e * e + 2 * length * length * e + 2 * length * e * ff)
        return e, batch, length, params, macs

    def _norm(self, e: int) -> int:
        return e * (1 + int(self.bias))

    def _state(self, e: int, attentions: tuple[str, ...], norms: int) -> dict[str, Shape]:
        """torch's order: the attention blocks, linear1, linear2, then norm1..norm{norms}."""
        state: dict[str, Shape] = {}
        for name in attentions:
            state.update(_attention_state(e, e, e, self.bias, False, f"{name}."))
        state.update(_linear_state("linear1", self.dim_feedforward, e, self.bias))
        state.update(_linear_state("linear2", e, self.dim_feedforward, self.bias))
        for k in range(1, norms + 1):
            state[f"norm{k}.weight"] = (e,)
            if self.bias:
                state[f"norm{k}.bias"] = (e,)
        return state


@register
class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention and feed-forward; the output has the input's shape."""

    type: Literal["TransformerEncoderLayer"] = "TransformerEncoderLayer"

    def infer(self, shape: Shape) -> Inferred:
        e, _, _, params, macs = self._block(shape)
        state = self._state(e, ("self_attn",), 2)
        return Inferred(shape, params=params, macs=macs, args={"d_model": e}, state=state)


@register
class TransformerDecoderLayer(_TransformerLayer):
    """Inputs (tgt, memory): self-attention on tgt, cross-attention to memory, feed-forward.

    The output has tgt's shape; memory is ``[N, S, d_model]`` (``[S, N, d_model]``).
    """

    type: Literal["TransformerDecoderLayer"] = "TransformerDecoderLayer"
    arity = (2, 2)  # (tgt, memory)

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        tgt, memory = shapes
        e, batch, length, params, macs = self._block(tgt)
        _check_sequence(memory, "the memory {in1}")
        if memory[-1] != e:
            raise ShapeError(
                f"the memory {{in1}} must have d_model={e} features, like the target {{in0}}, "
                f"but has {memory[-1]}",
                field="from",
            )
        _same_batch("the memory {in1}", memory, batch, self.batch_first, "the target {in0}")
        _, source = _batch_and_length(memory, self.batch_first)
        params += 4 * e * e + 4 * e * int(self.bias) + self._norm(e)  # cross-attention, norm3
        macs += batch * (2 * length * e * e + 2 * source * e * e + 2 * length * source * e)
        state = self._state(e, ("self_attn", "multihead_attn"), 3)
        return Inferred(tgt, params=params, macs=macs, args={"d_model": e}, state=state)
