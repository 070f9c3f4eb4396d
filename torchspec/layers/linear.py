"""Linear and Bilinear: act on the last dimension; the input feature counts may be left out (inferred)."""

from __future__ import annotations

from typing import ClassVar, Literal

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, prod, register
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


@register
class Bilinear(Layer):
    """``y = x1^T W x2 + b`` from two inputs ``[N, *, in1_features]`` and ``[N, *, in2_features]``
    with the same leading dimensions; both feature counts may be left out (inferred).

    MACs: one per weight element (``out * in1 * in2``) for every position of the leading dims.
    """

    type: Literal["Bilinear"] = "Bilinear"
    positional: ClassVar[tuple[str, ...]] = ("in1_features", "in2_features", "out_features")
    arity = (2, 2)
    sample_ranks = tuple(range(1, 9))
    sample_layout = "(*, features)"

    in1_features: PosInt | None = None
    in2_features: PosInt | None = None
    out_features: PosInt
    bias: Bool = True

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        first, second = shapes
        self.check_rank(first)
        self.check_rank(second)
        if first[:-1] != second[:-1]:
            raise ShapeError(
                "input1 {in0} and input2 {in1} must have the same dimensions but the last",
                field="from",
            )
        f1 = self.check_given("in1_features", self.in1_features, first[-1], None)
        f2 = second[-1]
        if self.in2_features not in (None, f2):
            raise ShapeError(
                f"in2_features is {self.in2_features} but input2 is {{in1}}; "
                f"set in2_features: {f2} or leave it out",
                field="in2_features",
            )
        weight = self.out_features * f1 * f2
        out = (*first[:-1], self.out_features)
        state: dict[str, Shape] = {"weight": (self.out_features, f1, f2)}
        if self.bias:
            state["bias"] = (self.out_features,)
        return Inferred(
            out,
            params=weight + (self.out_features if self.bias else 0),
            macs=prod(first[:-1]) * weight,
            args={"in1_features": f1, "in2_features": f2},
            state=state,
        )
