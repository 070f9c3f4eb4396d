"""Padding: Zero/Constant/Reflection/Replication/CircularPad in 1, 2 and 3 spatial dimensions.

``padding`` is an int (every side) or torch's flat list of ``2 * rank`` ints, last dimension first:
``(left, right)``, ``(left, right, top, bottom)``, ``(left, right, top, bottom, front, back)``.
Each spatial size becomes ``L + before + after``. Negative values crop, as torch's do. Beyond
that each mode has torch's limits (per side, against the unpadded size L):

* zero / constant: a crop may not remove more than L in total (torch's narrow fails);
* reflection: a pad must be < L (a reflection cannot repeat the edge);
* circular: a pad must be <= L (it would wrap around more than once), and not negative: torch's
  circular crops fail or not by how its copies overlap in memory; crop with a ZeroPad first;
* replication: any pad.

An output size below 1 is refused (torch would return an empty tensor or fail). No parameters,
no MACs.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from torchspec.layers.base import (
    SPATIAL_LAYOUTS,
    Inferred,
    Layer,
    Shape,
    ShapeError,
    checked_dim,
    register,
    spatial_name,
)
from torchspec.layers.fields import INT64_MAX, Float, describe

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -INT64_MAX <= value <= INT64_MAX


def _pad_field(rank: int, crop: bool) -> Any:
    """An int, or a list of ``2 * rank`` ints (negative ones crop, where ``crop``)."""
    count = 2 * rank
    lowest = -INT64_MAX if crop else 0

    def validate(value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if _is_int(value) or (isinstance(value, list) and len(value) == count and all(map(_is_int, value))):
            if min(items) >= lowest:
                return value
            raise PydanticCustomError(
                "circular_crop",
                "circular padding cannot be negative, found {found}; crop with a ZeroPad of "
                "negative padding first, then pad circularly",
                {"found": describe(value)},
            )
        raise PydanticCustomError(
            "padding",
            "padding must be an int or a list of {count} ints (before and after each spatial "
            "dimension, last dimension first), found {found}",
            {"count": count, "found": describe(value)},
        )

    item: dict[str, Any] = {"type": "integer"} if crop else {"type": "integer", "minimum": 0}
    schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": count, "maxItems": count}]}
    return Annotated[Any, PlainValidator(validate), WithJsonSchema(schema)]


class _Pad(Layer):
    rank: ClassVar[int]
    mode: ClassVar[str]
    positional: ClassVar[tuple[str, ...]] = ("padding",)

    def pairs(self) -> list[tuple[int, int]]:
        """(before, after) per spatial dimension, first spatial dimension first."""
        pad = self.padding  # type: ignore[attr-defined]
        flat = [pad] * (2 * self.rank) if isinstance(pad, int) else list(pad)
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(self.rank)]
        return pairs[::-1]  # torch lists the last dimension first

    def limit(self, before: int, after: int, length: int) -> str | None:
        """Why torch refuses these pads on a dimension of ``length``, or None."""
        if self.mode == "constant" and length + min(before, 0) + min(after, 0) < 0:
            return f"crops {-min(before, 0) - min(after, 0)}, more than its size"
        if self.mode == "reflect" and max(before, after) >= length:
            return f"pads {max(before, after)} on one side, but reflection needs each pad < {length}"
        if self.mode == "circular" and max(before, after) > length:
            return f"pads {max(before, after)} on one side, but circular padding needs each pad <= {length}"
        return None

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        out = list(shape)
        spatial = len(shape) - self.rank
        for i, (before, after) in enumerate(self.pairs()):
            length = shape[spatial + i]
            name = spatial_name(i, self.rank)
            why = self.limit(before, after, length)
            size = length + before + after
            if why is None and size < 1:
                why = f"would become {size}"
            if why is not None:
                raise ShapeError(
                    f"padding {self.padding} on dimension {name} of {{incoming}} (size {length}) "  # type: ignore[attr-defined]
                    f"{why}; use smaller padding",
                    field="padding",
                )
            out[spatial + i] = checked_dim(size, f"dimension {name}")
        return Inferred(tuple(out))


def _pad_class(rank: int, mode: str) -> type[_Pad]:
    class PadNd(_Pad):
        padding: _pad_field(rank, crop=mode != "circular")  # type: ignore[valid-type]

    PadNd.rank = rank
    PadNd.mode = mode
    PadNd.sample_ranks = (rank + 1,)
    PadNd.sample_layout = SPATIAL_LAYOUTS[rank]
    return PadNd


class _Constant(Layer):
    value: Float


@register
class ZeroPad1d(_pad_class(1, "constant")):  # type: ignore[misc]
    type: Literal["ZeroPad1d"] = "ZeroPad1d"


@register
class ZeroPad2d(_pad_class(2, "constant")):  # type: ignore[misc]
    type: Literal["ZeroPad2d"] = "ZeroPad2d"


@register
class ZeroPad3d(_pad_class(3, "constant")):  # type: ignore[misc]
    type: Literal["ZeroPad3d"] = "ZeroPad3d"


@register
class ConstantPad1d(_pad_class(1, "constant"), _Constant):  # type: ignore[misc]
    type: Literal["ConstantPad1d"] = "ConstantPad1d"
    positional = ("padding", "value")


@register
class ConstantPad2d(_pad_class(2, "constant"), _Constant):  # type: ignore[misc]
    type: Literal["ConstantPad2d"] = "ConstantPad2d"
    positional = ("padding", "value")


@register
class ConstantPad3d(_pad_class(3, "constant"), _Constant):  # type: ignore[misc]
    type: Literal["ConstantPad3d"] = "ConstantPad3d"
    positional = ("padding", "value")


@register
class ReflectionPad1d(_pad_class(1, "reflect")):  # type: ignore[misc]
    type: Literal["ReflectionPad1d"] = "ReflectionPad1d"


@register
class ReflectionPad2d(_pad_class(2, "reflect")):  # type: ignore[misc]
    type: Literal["ReflectionPad2d"] = "ReflectionPad2d"


@register
class ReflectionPad3d(_pad_class(3, "reflect")):  # type: ignore[misc]
    type: Literal["ReflectionPad3d"] = "ReflectionPad3d"


@register
class ReplicationPad1d(_pad_class(1, "replicate")):  # type: ignore[misc]
    type: Literal["ReplicationPad1d"] = "ReplicationPad1d"


@register
class ReplicationPad2d(_pad_class(2, "replicate")):  # type: ignore[misc]
    type: Literal["ReplicationPad2d"] = "ReplicationPad2d"


@register
class ReplicationPad3d(_pad_class(3, "replicate")):  # type: ignore[misc]
    type: Literal["ReplicationPad3d"] = "ReplicationPad3d"


@register
class CircularPad1d(_pad_class(1, "circular")):  # type: ignore[misc]
    type: Literal["CircularPad1d"] = "CircularPad1d"


@register
class CircularPad2d(_pad_class(2, "circular")):  # type: ignore[misc]
    type: Literal["CircularPad2d"] = "CircularPad2d"


@register
class CircularPad3d(_pad_class(3, "circular")):  # type: ignore[misc]
    type: Literal["CircularPad3d"] = "CircularPad3d"
