"""Linear: acts on the last dimension; ``in_features`` may be left out and is then inferred."""

from __future__ import annotations

from typing import ClassVar, Literal

from torchspec.layers.base import Inferred, Layer, Shape, prod, register
from torchspec.layers.fields import Bool, PosInt


@register
class Linear(Layer):
    type: Literal["Linear"] = "Linear"
    positional: ClassVar[tuple[str, ...]] = ("in_features", "out_features")
    sample_ranks = tuple(range(1, 9))
    sample_layout = "(*, features)"

    in_features: PosInt | None = None
    out_features: PosInt
    bias: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        hints = []
        if len(shape) > 2 and self.in_features == prod(shape[1:]):
            # the classic slip: in_features counts the whole sample, but Linear sees the last dim only
            hints.append(
                f"{self.in_features} is the whole sample flattened: add `- Flatten` before this "
                f"Linear, which acts on the last dimension only"
            )
        f = self.check_given("in_features", self.in_features, shape[-1], None, hints)
        weight = f * self.out_features
        params = weight + (self.out_features if self.bias else 0)
        # one MAC per weight element for every position of the leading dimensions
        macs = prod(shape[:-1]) * weight
        out = (*shape[:-1], self.out_features)
        state: dict[str, Shape] = {"weight": (self.out_features, f)}
        if self.bias:
            state["bias"] = (self.out_features,)
        return Inferred(out, params=params, macs=macs, args={"in_features": f}, state=state)
