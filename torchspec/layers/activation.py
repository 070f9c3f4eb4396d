"""Element-wise layers: activations and dropout. Shapes pass through unchanged."""

from __future__ import annotations

from typing import ClassVar, Literal

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, register
from torchspec.layers.fields import Bool, Dim, Float, Probability


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


class _Dropout(_Elementwise):
    aliases_input = True  # in eval mode dropout returns its input tensor itself
    p: Probability = 0.5
    inplace: Bool = False


@register
class Dropout(_Dropout):
    type: Literal["Dropout"] = "Dropout"


@register
class Dropout1d(_Dropout):
    """Zeroes whole channels of (C, L) samples."""

    type: Literal["Dropout1d"] = "Dropout1d"
    sample_ranks = (2,)
    sample_layout = "(C, L)"


@register
class Dropout2d(_Dropout):
    type: Literal["Dropout2d"] = "Dropout2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"


@register
class Dropout3d(_Dropout):
    type: Literal["Dropout3d"] = "Dropout3d"
    sample_ranks = (4,)
    sample_layout = "(C, D, H, W)"


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
