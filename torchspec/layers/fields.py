"""Reusable, validated field types for layer parameters.

Each type is an ``Annotated`` alias so a layer declares ``kernel_size: Size[3]`` and gets torch's
rule (an int, or one int per spatial dimension), a precise error message and a JSON Schema.
Values keep torch's meaning: a size list has exactly one entry per spatial dimension.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from torchspec.diagnose import describe

__all__ = [
    "INT64_MAX",
    "Bool",
    "Dim",
    "Float",
    "NonNegInt",
    "OptSizeList",
    "Padding",
    "PosFloat",
    "PosInt",
    "Probability",
    "ScaleFactor",
    "Size",
    "describe",
]

INT64_MAX = 2**63 - 1

# bools are ints in Python and YAML 1.1 reads `no`/`off`/`yes`/`on` as bools: strict mode keeps them apart.
PosInt = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]
NonNegInt = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
Dim = Annotated[int, Field(strict=True, ge=-64, le=64)]
Float = Annotated[float, Field(allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Bool = Annotated[bool, Field(strict=True)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size_error(rank: int, minimum: int, found: Any, why: str) -> PydanticCustomError:
    dims = "one int" if rank == 1 else f"a list of {rank} ints, one per spatial dimension"
    return PydanticCustomError(
        "size",
        "{why}: expected an int >= {minimum} or {dims}, found {found}",
        {"why": why, "minimum": minimum, "dims": dims, "found": describe(found)},
    )


def _size_validator(rank: int, minimum: int, allow_none_items: bool) -> Any:
    def check_item(item: Any, whole: Any) -> None:
        if item is None and allow_none_items:
            return
        if not _is_int(item):
            raise _size_error(rank, minimum, whole, "not an int")
        if item < minimum or item > INT64_MAX:
            raise _size_error(rank, minimum, whole, "out of range")

    def validate(value: Any) -> int | list[int | None]:
        if isinstance(value, list):
            if len(value) != rank:
                raise _size_error(rank, minimum, value, f"wrong length {len(value)}")
            for item in value:
                check_item(item, value)
            return list(value)
        check_item(value, value)
        return value  # type: ignore[no-any-return]

    return validate


def _size_schema(rank: int, minimum: int, allow_none_items: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if allow_none_items:
        item = {"anyOf": [item, {"type": "null"}]}
    listed = {"type": "array", "items": item, "minItems": rank, "maxItems": rank}
    return {"anyOf": [{"type": "integer", "minimum": minimum}, listed]}


class _SizeFactory:
    """``Size[3]``: an int >= 1 or a list of 3 such ints (kernel_size, stride, dilation...)."""

    def __init__(self, minimum: int, allow_none_items: bool = False) -> None:
        self.minimum = minimum
        self.allow_none_items = allow_none_items

    def __getitem__(self, rank: int) -> Any:
        args = (rank, self.minimum, self.allow_none_items)
        return Annotated[Any, PlainValidator(_size_validator(*args)), WithJsonSchema(_size_schema(*args))]


Size = _SizeFactory(minimum=1)
PadSize = _SizeFactory(minimum=0)
OptSizeList = _SizeFactory(minimum=1, allow_none_items=True)  # adaptive pools: None keeps a dim


class _PaddingFactory:
    """``Padding[2]``: like ``PadSize[2]`` but also torch's strings 'same' and 'valid'."""

    def __getitem__(self, rank: int) -> Any:
        sized = _size_validator(rank, 0, False)

        def validate(value: Any) -> Any:
            if value in ("same", "valid"):
                return value
            if isinstance(value, str):
                raise PydanticCustomError(
                    "padding",
                    "padding must be 'same', 'valid', an int or a list, found {found}",
                    {"found": describe(value)},
                )
            return sized(value)

        schema = _size_schema(rank, 0, False)
        schema["anyOf"].append({"enum": ["same", "valid"]})
        return Annotated[Any, PlainValidator(validate), WithJsonSchema(schema)]


Padding = _PaddingFactory()


def _scale_validator(rank: int) -> Any:
    def ok(item: Any) -> bool:
        return (_is_int(item) or isinstance(item, float)) and math.isfinite(item) and item > 0

    def validate(value: Any) -> Any:
        if isinstance(value, list) and len(value) == rank and all(ok(v) for v in value):
            return [float(v) for v in value]
        if not isinstance(value, list) and ok(value):
            return float(value)
        raise PydanticCustomError(
            "scale_factor",
            "expected a number > 0 or a list of {rank} such numbers, found {found}",
            {"rank": rank, "found": describe(value)},
        )

    return validate


class _ScaleFactory:
    def __getitem__(self, rank: int) -> Any:
        number = {"type": "number", "exclusiveMinimum": 0}
        schema = {
            "anyOf": [
                number,
                {"type": "array", "items": number, "minItems": rank, "maxItems": rank},
            ]
        }
        return Annotated[Any, PlainValidator(_scale_validator(rank)), WithJsonSchema(schema)]


ScaleFactor = _ScaleFactory()

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
