"""A spec's ``input``: one sample's shape, and for inputs that are not float images its dtype.

Two forms, one meaning:

* ``input: [3, 16, 112, 112]`` — a float32 sample of that shape (the form most specs use);
* ``input: {shape: [64], dtype: int64, low: 0, high: 10000}`` — integers (token ids) in
  ``[low, high)``, torch.randint's convention; ``high`` is optional (without it the range is
  unknown and only ``low`` is). ``dtype: float32`` with a bare ``shape`` is the first form.

The dtype flows through the layers (:mod:`torchspec.infer`): a layer that reads integers
(``Embedding``) refuses floats, a float layer refuses integers, views pass either on. The range
is checked against an ``Embedding``'s ``num_embeddings``, and bench, build's meta check and the
``random`` source draw valid ids from it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.fields import PosInt

__all__ = [
    "FLOAT",
    "INDEX",
    "InputShape",
    "TensorInput",
    "input_data",
    "input_dtype",
    "input_range",
    "input_shape",
]

FLOAT = "float32"
INDEX = "int64"

Int64 = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
InputShape = Annotated[
    list[PosInt],
    Field(min_length=1, max_length=7, description="one sample's shape, e.g. [3, 16, 112, 112]"),
]


class TensorInput(BaseModel):
    """``{shape: [64], dtype: int64, high: 10000}``: one sample's shape, dtype and value range."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    shape: InputShape
    dtype: Literal["float32", "int64"] = Field(
        default="float32", description="float32 (features, images) or int64 (token ids, indices)"
    )
    low: Int64 | None = Field(default=None, description="int64 inputs: the smallest value (default 0)")
    high: Int64 | None = Field(
        default=None, description="int64 inputs: one past the largest value, as torch.randint's high"
    )

    @model_validator(mode="after")
    def _range(self) -> TensorInput:
        if self.dtype == FLOAT and (self.low is not None or self.high is not None):
            raise PydanticCustomError(
                "input_range",
                "low and high declare the range of integer inputs; a float32 input has none "
                "(set dtype: int64 for token ids, or drop low and high)",
            )
        low = 0 if self.low is None else self.low
        if self.high is not None and self.high <= low:
            raise PydanticCustomError(
                "input_range",
                "high ({high}) must be above low ({low}): the values are low .. high - 1",
                {"high": self.high, "low": low},
            )
        return self


def input_shape(value: list[int] | TensorInput) -> tuple[int, ...]:
    """One sample's shape, whichever form ``input`` has."""
    return tuple(value.shape if isinstance(value, TensorInput) else value)


def input_dtype(value: list[int] | TensorInput) -> str:
    """``float32`` or ``int64``."""
    return value.dtype if isinstance(value, TensorInput) else FLOAT


def input_range(value: list[int] | TensorInput) -> tuple[int, int | None] | None:
    """``(low, high)`` of an integer input (high None when not declared); None for floats."""
    if not isinstance(value, TensorInput) or value.dtype == FLOAT:
        return None
    return (0 if value.low is None else value.low, value.high)


def input_data(value: list[int] | TensorInput) -> Any:
    """The input as a user writes it (for the expanded spec and checkpoints)."""
    if isinstance(value, TensorInput):
        return value.model_dump(exclude_unset=True)
    return list(value)
