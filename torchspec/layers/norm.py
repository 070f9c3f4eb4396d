"""Normalisation over a sample's own values: LayerNorm, LayerNorm2d, RMSNorm, GroupNorm,
LocalResponseNorm, CrossMapLRN2d. Shapes pass through unchanged. BatchNorm and InstanceNorm:
:mod:`torchspec.layers.norm_batch`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import PlainValidator, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, prod, register
from torchspec.layers.fields import Bool, Float, PosFloat, PosInt, describe


def _normalized_shape(value: Any) -> int | list[int]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
        raise PydanticCustomError(
            "normalized_shape",
            "normalized_shape must be an int >= 1 or a non-empty list of them, found {found}",
            {"found": describe(value)},
        )
    return value  # type: ignore[no-any-return]


NormalizedShape = Annotated[
    Any,
    PlainValidator(_normalized_shape),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            ]
        }
    ),
]


def _trailing(normalized_shape: int | list[int], shape: Shape) -> list[int]:
    """``normalized_shape`` as a list, checked against the trailing dimensions of ``shape``."""
    dims = list(normalized_shape) if isinstance(normalized_shape, list) else [normalized_shape]
    # torch only compares trailing sizes: the batch dimension may be among them
    tail = list(shape[len(shape) - len(dims) :]) if len(dims) <= len(shape) else None
    if tail != dims:
        fit = list(shape[-len(dims) :]) if len(dims) < len(shape) else list(shape[-1:])
        raise ShapeError(
            f"normalized_shape {dims} must match the trailing dimensions of {{incoming}}; "
            f"set normalized_shape: {fit}",
            field="normalized_shape",
        )
    return dims


@register
class LayerNorm(Layer):
    """Normalises over the trailing ``normalized_shape`` dimensions."""

    type: Literal["LayerNorm"] = "LayerNorm"
    positional: ClassVar[tuple[str, ...]] = ("normalized_shape",)

    normalized_shape: NormalizedShape
    eps: PosFloat = 1e-5
    elementwise_affine: Bool = True
    bias: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        dims = _trailing(self.normalized_shape, shape)
        per = prod(dims)
        params = (per + (per if self.bias else 0)) if self.elementwise_affine else 0
        state: dict[str, Shape] = {}
        if self.elementwise_affine:
            state["weight"] = tuple(dims)
            if self.bias:
                state["bias"] = tuple(dims)
        return Inferred(shape, params=params, state=state)


@register
class GroupNorm(Layer):
    """Normalises channel groups; ``num_channels`` may be left out and is then inferred."""

    type: Literal["GroupNorm"] = "GroupNorm"
    positional: ClassVar[tuple[str, ...]] = ("num_groups", "num_channels")
    sample_ranks = (1, 2, 3, 4, 5)

    num_groups: PosInt
    num_channels: PosInt | None = None
    eps: PosFloat = 1e-5
    affine: Bool = True

    @field_validator("num_channels")
    @classmethod
    def _groups_divide(cls, value: int | None, info: ValidationInfo) -> int | None:
        groups = info.data.get("num_groups")
        if value is not None and groups is not None and value % groups:
            raise PydanticCustomError(
                "num_groups",
                "num_groups={groups} must divide num_channels={channels}",
                {"groups": groups, "channels": value},
            )
        return value

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        c = shape[1]
        if self.affine:  # else torch never looks at num_channels
            self.check_given("num_channels", self.num_channels, c, "channels")
        channels = c if self.num_channels is None else self.num_channels
        if c % self.num_groups:
            raise ShapeError(
                f"num_groups={self.num_groups} does not divide the {c} channels of {{incoming}}",
                field="num_groups",
            )
        if prod(shape) == self.num_groups:
            raise ShapeError(
                f"num_groups={self.num_groups} leaves 1 value per group, but torch needs more than 1: "
                f"the incoming shape is {{incoming}} with a batch of {shape[0]}; use fewer groups or a "
                f"larger batch",
                field="num_groups",
            )
        params = 2 * c if self.affine else 0
        state: dict[str, Shape] = {"weight": (channels,), "bias": (channels,)} if self.affine else {}
        return Inferred(shape, params=params, args={"num_channels": channels}, state=state)


@register
class RMSNorm(Layer):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dimensions (no bias).

    ``eps`` null is torch's default: the machine epsilon of the input's dtype."""

    type: Literal["RMSNorm"] = "RMSNorm"
    positional: ClassVar[tuple[str, ...]] = ("normalized_shape",)

    normalized_shape: NormalizedShape
    eps: PosFloat | None = None
    elementwise_affine: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        dims = _trailing(self.normalized_shape, shape)
        if not self.elementwise_affine:
            return Inferred(shape)
        return Inferred(shape, params=prod(dims), state={"weight": tuple(dims)})


class _LocalResponse(Layer):
    """Normalises each value by the squares of ``size`` neighbouring channels."""

    positional: ClassVar[tuple[str, ...]] = ("size",)
    size: PosInt
    alpha: Float = 1e-4
    beta: Float = 0.75

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        return Inferred(shape)


@register
class LocalResponseNorm(_LocalResponse):
    type: Literal["LocalResponseNorm"] = "LocalResponseNorm"
    sample_ranks = (2, 3, 4)
    sample_layout = "(C, *)"
    k: Float = 1.0


@register
class CrossMapLRN2d(_LocalResponse):
    """The Lua Torch form of LocalResponseNorm, on (C, H, W) samples."""

    type: Literal["CrossMapLRN2d"] = "CrossMapLRN2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"
    k: Float = 1  # an int in torch's signature


@register
class LayerNorm2d(Layer):
    """LayerNorm over the channels of ``(N, C, H, W)``, each position on its own (ConvNeXt's,
    torchvision.models.convnext.LayerNorm2d): ``normalized_shape`` is the channel count (inferred
    when left out); state ``weight`` and ``bias`` of shape (C,). torch's LayerNorm defaults (eps
    1e-5; torchvision's ConvNeXt sets 1e-6)."""

    type: Literal["LayerNorm2d"] = "LayerNorm2d"
    torch_home: ClassVar[str] = "torchspec.nn"
    positional: ClassVar[tuple[str, ...]] = ("normalized_shape",)
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"

    normalized_shape: PosInt | None = None
    eps: PosFloat = 1e-5
    elementwise_affine: Bool = True
    bias: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        c = self.check_given("normalized_shape", self.normalized_shape, shape[1], "channels")
        state: dict[str, Shape] = {}
        if self.elementwise_affine:
            state["weight"] = (c,)
            if self.bias:
                state["bias"] = (c,)
        params = sum(s[0] for s in state.values())
        return Inferred(shape, params=params, args={"normalized_shape": c}, state=state)
