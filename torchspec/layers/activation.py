"""Element-wise layers: activations (and StochasticDepth). Shapes pass through unchanged, but for
GLU, which halves ``dim``; PReLU has ``num_parameters`` weights (1, or one per channel)."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, register
from torchspec.layers.fields import Bool, Dim, Float, PosInt, Probability
from torchspec.layers.reshape import normalize_dim

_FLOAT32_MAX = 3.4028234663852886e38


class _Elementwise(Layer):
    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        return Inferred(shape)


class _Inplace(_Elementwise):
    inplace: Bool = False


@register
class ReLU(_Inplace):
    type: Literal["ReLU"] = "ReLU"


@register
class LeakyReLU(_Inplace):
    type: Literal["LeakyReLU"] = "LeakyReLU"
    negative_slope: Float = 0.01


@register
class ELU(_Inplace):
    type: Literal["ELU"] = "ELU"
    alpha: Float = 1.0


@register
class GELU(_Elementwise):
    type: Literal["GELU"] = "GELU"
    approximate: Literal["none", "tanh"] = "none"


@register
class SiLU(_Inplace):
    type: Literal["SiLU"] = "SiLU"


@register
class ReLU6(_Inplace):
    type: Literal["ReLU6"] = "ReLU6"


@register
class Hardswish(_Inplace):
    type: Literal["Hardswish"] = "Hardswish"


@register
class Hardsigmoid(_Inplace):
    type: Literal["Hardsigmoid"] = "Hardsigmoid"


@register
class SELU(_Inplace):
    type: Literal["SELU"] = "SELU"


@register
class CELU(_Inplace):
    type: Literal["CELU"] = "CELU"
    alpha: Annotated[Float, Field(description="not 0: torch divides by it")] = 1.0

    @model_validator(mode="after")
    def _alpha_invertible(self) -> CELU:
        # torch computes 1 / alpha and passes alpha and 1 / alpha as float32 scalars; a finite
        # value beyond float32's range is an overflow error there (an infinite one is not)
        inverse = abs(1 / self.alpha) if self.alpha else math.inf
        if not self.alpha or abs(self.alpha) > _FLOAT32_MAX or _FLOAT32_MAX < inverse < math.inf:
            raise PydanticCustomError(
                "celu_alpha",
                "alpha {alpha} is 0 or too close to 0 (or too large) for CELU: torch needs alpha "
                "and 1 / alpha as float32 numbers",
                {"alpha": self.alpha},
            )
        return self


@register
class RReLU(_Inplace):
    """Randomized leaky ReLU: a slope drawn from [lower, upper] in training, their mean in eval."""

    type: Literal["RReLU"] = "RReLU"
    lower: Float = 1.0 / 8
    upper: Float = 1.0 / 3

    @model_validator(mode="after")
    def _ordered(self) -> RReLU:
        if self.lower > self.upper:
            raise PydanticCustomError(
                "rrelu_bounds",
                "lower ({lower}) must be <= upper ({upper})",
                {"lower": self.lower, "upper": self.upper},
            )
        return self


@register
class Hardtanh(_Inplace):
    type: Literal["Hardtanh"] = "Hardtanh"
    min_val: Float = -1.0
    max_val: Float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> Hardtanh:
        if self.max_val <= self.min_val:
            raise PydanticCustomError(
                "hardtanh_bounds",
                "max_val ({max}) must be greater than min_val ({min})",
                {"max": self.max_val, "min": self.min_val},
            )
        return self


@register
class Threshold(_Inplace):
    """``y = x if x > threshold else value``."""

    type: Literal["Threshold"] = "Threshold"
    positional: ClassVar[tuple[str, ...]] = ("threshold", "value")
    threshold: Float
    value: Float


@register
class Mish(_Inplace):
    type: Literal["Mish"] = "Mish"


@register
class LogSigmoid(_Elementwise):
    type: Literal["LogSigmoid"] = "LogSigmoid"


@register
class Softsign(_Elementwise):
    type: Literal["Softsign"] = "Softsign"


@register
class Tanhshrink(_Elementwise):
    type: Literal["Tanhshrink"] = "Tanhshrink"


@register
class Hardshrink(_Elementwise):
    type: Literal["Hardshrink"] = "Hardshrink"
    lambd: Float = 0.5


@register
class Softshrink(_Elementwise):
    type: Literal["Softshrink"] = "Softshrink"
    lambd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.5


@register
class Softplus(_Elementwise):
    type: Literal["Softplus"] = "Softplus"
    beta: Float = 1.0
    threshold: Float = 20.0


@register
class PReLU(Layer):
    """A learned slope for negative inputs: one (``num_parameters: 1``) or one per channel (dim 1)."""

    type: Literal["PReLU"] = "PReLU"
    num_parameters: PosInt = 1
    init: Float = 0.25

    def infer(self, shape: Shape) -> Inferred:
        n = self.num_parameters
        if n != 1 and n != shape[1]:
            raise ShapeError(
                f"num_parameters is {n} but the incoming shape is {{incoming}} with {shape[1]} "
                f"channels (dim 1); use num_parameters: {shape[1]} (one slope per channel) or 1",
                field="num_parameters",
            )
        return Inferred(shape, params=n, state={"weight": (n,)})


@register
class GLU(Layer):
    """Gated linear unit: splits ``dim`` in halves a, b and returns ``a * sigmoid(b)``."""

    type: Literal["GLU"] = "GLU"
    dim: Dim = -1

    def infer(self, shape: Shape) -> Inferred:
        dim = normalize_dim(self.dim, len(shape))
        if shape[dim] % 2:
            raise ShapeError(
                f"GLU halves dimension {dim}, but it is {shape[dim]} in {{incoming}}, an odd size; "
                f"make it even or choose another dim",
                field="dim",
            )
        return Inferred((*shape[:dim], shape[dim] // 2, *shape[dim + 1 :]))


@register
class Sigmoid(_Elementwise):
    type: Literal["Sigmoid"] = "Sigmoid"


@register
class Tanh(_Elementwise):
    type: Literal["Tanh"] = "Tanh"


@register
class Identity(_Elementwise):
    aliases_input = True  # returns its input tensor itself
    type: Literal["Identity"] = "Identity"
    reads = "any"  # a view or tensor op: integer ids pass through as they are


class _SoftmaxBase(_Elementwise):
    dim: Dim | None = None

    def infer(self, shape: Shape) -> Inferred:
        if self.dim is not None and not -len(shape) <= self.dim < len(shape):
            raise ShapeError(
                f"dim {self.dim} is out of range for {{incoming}} (rank {len(shape)} with the "
                f"batch); use a dim in [{-len(shape)}, {len(shape) - 1}], e.g. -1",
                field="dim",
            )
        return Inferred(shape)


@register
class Softmax(_SoftmaxBase):
    type: Literal["Softmax"] = "Softmax"


@register
class LogSoftmax(_SoftmaxBase):
    type: Literal["LogSoftmax"] = "LogSoftmax"


@register
class Softmin(_SoftmaxBase):
    type: Literal["Softmin"] = "Softmin"


@register
class Softmax2d(_Elementwise):
    """Softmax over the channels of (C, H, W) samples."""

    type: Literal["Softmax2d"] = "Softmax2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"


@register
class StochasticDepth(_Elementwise):
    """Drops whole residual branches in training (torchvision.ops.StochasticDepth, Huang et al. 2016).

    ``mode: row`` drops each sample's branch with probability ``p``; ``batch`` drops it for the whole
    batch. Survivors are scaled by 1 / (1 - p); in eval() it returns its input itself.
    """

    type: Literal["StochasticDepth"] = "StochasticDepth"
    torch_home: ClassVar[str] = "torchspec.nn"
    aliases_input = True  # identity in eval mode
    positional: ClassVar[tuple[str, ...]] = ("p", "mode")
    p: Probability
    mode: Literal["row", "batch"] = "row"
