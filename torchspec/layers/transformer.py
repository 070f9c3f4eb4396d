"""Transformer stacks: TransformerEncoder, TransformerDecoder (their layer given inline) and Transformer.

torch builds a stack from a layer *module* it copies ``num_layers`` times; a spec gives that layer
inline, as a spec layer, and optionally the final ``norm`` the same way::

    {type: TransformerEncoder, num_layers: 6,
     encoder_layer: {type: TransformerEncoderLayer, d_model: 512, nhead: 8, batch_first: true},
     norm: {type: LayerNorm, normalized_shape: 512}}

The inline layer is checked like any layer (its ``d_model`` may be left out and is inferred); it
takes no ``name`` or ``from`` (it is a template, not a child of the container). Shapes, parameters,
MACs and the state_dict are the inline layer's, ``num_layers`` times (``layers.0.self_attn...``),
plus the norm's (``norm.weight``). ``Transformer`` reads ``from: [src, tgt]`` and returns tgt's
shape; its ``d_model`` may be left out (inferred from src; torch's default is 512). ``causal: true``
on a stack or a Transformer makes the (decoder's target) self-attention causal; the inline layer
takes no ``causal`` of its own (the stack passes the mask to every layer). torch's
``custom_encoder``/``custom_decoder`` are not taken: write the stacks as TransformerEncoder and
TransformerDecoder layers wired with ``from:`` instead.
"""

from __future__ import annotations

import builtins
import warnings
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from torchspec.layers.attention import (
    Causal,
    TransformerArgs,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    _TransformerLayer,
)
from torchspec.layers.base import Inferred, InlineLayer, Layer, Shape, ShapeError, register
from torchspec.layers.fields import Bool, PosInt

__all__ = ["PositionalEncoding", "Transformer", "TransformerDecoder", "TransformerEncoder"]


def _inline_error(err: ShapeError, field: str) -> ShapeError:
    """A rule of the inline layer failed: the message says so, the error points at the field."""
    return ShapeError(f"{field}: {err.message}", field=field, hints=err.hints)


def _template(layer: Any) -> Any:
    """An inline layer is copied into the stack, not wired: no ``name`` or ``from``."""
    if isinstance(layer, Layer) and (layer.name is not None or layer.from_ is not None):
        raise PydanticCustomError(
            "inline_layer",
            "an inline layer takes no name or from: it is copied into the stack, not wired "
            "(drop name: and from: here)",
        )
    if getattr(layer, "causal", False):
        raise PydanticCustomError(
            "inline_causal",
            "set causal: true on the stack, not on its inline layer: the stack passes the mask to "
            "every layer",
        )
    return layer


Template = AfterValidator(_template)


def _stack(inner: Inferred, count: int, prefix: str = "") -> tuple[int, int, dict[str, Shape]]:
    """(params, MACs, state) of ``count`` copies of a layer under ``{prefix}layers.{i}.``."""
    state = {f"{prefix}layers.{i}.{k}": v for i in range(count) for k, v in inner.state.items()}
    return count * inner.params, count * inner.macs, state


class _Stack(Causal):
    """A stack of one inline layer, ``num_layers`` times, and an optional final norm; ``causal``:
    every layer's (target) self-attention is causal."""

    num_layers: PosInt  # torch fails on an empty stack (its forward reads layers[0])
    norm: Any = None  # an inline spec layer (torchspec.layers.AnyLayer), set by the subclasses

    @property
    def inline(self) -> _TransformerLayer:
        raise NotImplementedError

    def _finish(self, inner: Inferred, shape: Shape, inline_field: str) -> Inferred:
        params, macs, state = _stack(inner, self.num_layers)
        out = shape
        if self.norm is not None:  # torch applies it to the stack's output, whatever it does
            norm = self.norm.infer(shape)
            out = norm.shape
            params += norm.params
            macs += norm.macs
            state.update({f"norm.{k}": v for k, v in norm.state.items()})
            norm_args = InlineLayer(self.norm, self.norm.torch_args(norm))
        args: dict[str, Any] = {inline_field: InlineLayer(self.inline, self.inline.torch_args(inner))}
        if self.norm is not None:
            args["norm"] = norm_args
        return Inferred(out, params=params, macs=macs, args=args, state=state)

    def torch_module(self, args: dict[str, Any]) -> Any:
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but ...": a notice, not a fault
            warnings.simplefilter("ignore", UserWarning)
            return super().torch_module(args)


def _any_layer() -> Any:
    from torchspec.layers import AnyLayer  # the registry module imports this one

    return AnyLayer


@register
class TransformerEncoder(_Stack):
    """``num_layers`` copies of an inline TransformerEncoderLayer; the output has the input's shape."""

    type: Literal["TransformerEncoder"] = "TransformerEncoder"
    positional: ClassVar[tuple[str, ...]] = ("encoder_layer", "num_layers")
    sample_ranks = (2,)
    sample_layout = "(L, E)"

    encoder_layer: Annotated[TransformerEncoderLayer, Template]
    norm: Annotated[_any_layer() | None, Template] = None  # type: ignore[valid-type]
    enable_nested_tensor: Bool = True
    mask_check: Bool = True

    @property
    def inline(self) -> _TransformerLayer:
        return self.encoder_layer

    def infer(self, shape: Shape) -> Inferred:
        try:
            inner = self.encoder_layer.infer(shape)
        except ShapeError as err:
            raise _inline_error(err, "encoder_layer") from None
        return self._finish(inner, shape, "encoder_layer")


@register
class TransformerDecoder(_Stack):
    """Inputs (tgt, memory): ``num_layers`` copies of an inline TransformerDecoderLayer."""

    type: Literal["TransformerDecoder"] = "TransformerDecoder"
    positional: ClassVar[tuple[str, ...]] = ("decoder_layer", "num_layers")
    arity = (2, 2)
    sample_ranks = (2,)
    sample_layout = "(L, E)"

    decoder_layer: Annotated[TransformerDecoderLayer, Template]
    norm: Annotated[_any_layer() | None, Template] = None  # type: ignore[valid-type]

    @property
    def inline(self) -> _TransformerLayer:
        return self.decoder_layer

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        try:
            inner = self.decoder_layer.infer_many(shapes)
        except ShapeError as err:
            raise _inline_error(err, "decoder_layer") from None
        return self._finish(inner, shapes[0], "decoder_layer")


@register
class Transformer(TransformerArgs):
    """Inputs (src, tgt): an encoder stack over src, a decoder stack over tgt reading its output.

    The output has tgt's shape. Both stacks end in a LayerNorm (torch's own ``encoder.norm`` and
    ``decoder.norm``)."""

    type: Literal["Transformer"] = "Transformer"
    arity = (2, 2)

    nhead: PosInt = 8
    num_encoder_layers: PosInt = 6
    num_decoder_layers: PosInt = 6

    def _layer(self, cls: builtins.type[_TransformerLayer], d_model: int | None) -> Any:
        shared = self.model_dump(
            exclude={"type", "name", "from_", "num_encoder_layers", "num_decoder_layers", "causal"}
        )
        return cls(**{**shared, "d_model": d_model})

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        src, tgt = shapes
        enc = self._layer(TransformerEncoderLayer, self.d_model).infer(src)
        e = enc.args["d_model"]
        try:  # the decoder's inputs are (tgt, memory): its {in0} is our {in1} and the other way
            dec = self._layer(TransformerDecoderLayer, e).infer_many([tgt, src])
        except ShapeError as err:
            text = err.message.replace("{incoming}", "{in0}").replace("{in0}", "\0").replace("{in1}", "{in0}")
            raise ShapeError(text.replace("\0", "{in1}"), field=err.field, hints=err.hints) from None
        norm = e * (1 + int(self.bias))
        norm_state: dict[str, Shape] = {"norm.weight": (e,), **({"norm.bias": (e,)} if self.bias else {})}
        enc_params, enc_macs, state = _stack(enc, self.num_encoder_layers, "encoder.")
        state.update({f"encoder.{k}": v for k, v in norm_state.items()})
        dec_params, dec_macs, dec_state = _stack(dec, self.num_decoder_layers, "decoder.")
        state.update(dec_state)
        state.update({f"decoder.{k}": v for k, v in norm_state.items()})
        return Inferred(
            tgt,
            params=enc_params + dec_params + 2 * norm,
            macs=enc_macs + dec_macs,
            args={"d_model": e},
            state=state,
        )

    def torch_module(self, args: dict[str, Any]) -> Any:
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but ...": a notice, not a fault
            warnings.simplefilter("ignore", UserWarning)
            return super().torch_module(args)


@register
class PositionalEncoding(Layer):
    """torchspec's own (:class:`torchspec.nn.PositionalEncoding`): ``x + pe[:T]`` on ``[N, T, d_model]``.

    Sinusoidal positions (a buffer ``pe [max_len, d_model]``), or ``learned: true`` a parameter
    ``weight [max_len, d_model]``; ``d_model`` may be left out (inferred). Sequences are batch
    first; ``T`` must be at most ``max_len``. MACs 0 (an add)."""

    type: Literal["PositionalEncoding"] = "PositionalEncoding"
    torch_home: ClassVar[str] = "torchspec.nn"
    positional: ClassVar[tuple[str, ...]] = ("d_model", "max_len")
    sample_ranks = (2,)
    sample_layout = "(T, d_model)"

    d_model: PosInt | None = None
    max_len: PosInt
    learned: Bool = False

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        e = self.check_given("d_model", self.d_model, shape[-1], None)
        if shape[1] > self.max_len:
            raise ShapeError(
                f"the sequence {{incoming}} has {shape[1]} positions but max_len is {self.max_len}",
                field="max_len",
                hints=[f"set max_len: {shape[1]} or more"],
            )
        table = (self.max_len, e)
        if self.learned:
            return Inferred(shape, params=table[0] * e, args={"d_model": e}, state={"weight": table})
        return Inferred(shape, buffers=table[0] * e, args={"d_model": e}, state={"pe": table})
