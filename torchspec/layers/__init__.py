"""The layer registry: every layer torchspec knows, each defined once in its family module.

``AnyLayer`` is a layer of any registered type, chosen by its ``type`` tag; the spec model holds a
list of them, and so does ``Sequential``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PlainValidator, SerializeAsAny, WithJsonSchema
from pydantic_core import PydanticCustomError

from torchspec.layers import (  # noqa: F401  (register)
    activation,
    attention,
    conv,
    distance,
    linear,
    merge,
    norm,
    pool,
    recurrent,
    reshape,
    sparse,
    transformer,
)
from torchspec.layers.base import (
    REGISTRY,
    Inferred,
    Layer,
    Out,
    Shape,
    ShapeError,
    TupleOut,
    first_tensor,
    fmt_shape,
    register,
    tensors_of,
)

__all__ = [
    "LAYER_SCHEMA_MARKER",
    "REGISTRY",
    "AnyLayer",
    "Inferred",
    "Layer",
    "Out",
    "Sequential",
    "Shape",
    "ShapeError",
    "TupleOut",
    "first_tensor",
    "fmt_shape",
    "layer_tag",
    "register",
    "tensors_of",
]


@register
class Sequential(Layer):
    """A nested ``nn.Sequential``; its children are named by ``name`` or numbered from 0."""

    type: Literal["Sequential"] = "Sequential"
    container: ClassVar[bool] = True

    layers: Annotated[list[AnyLayer], Field(min_length=1)]

    def infer(self, shape: Shape) -> Inferred:  # pragma: no cover - walked by torchspec.infer
        raise TypeError("Sequential is walked by torchspec.infer, not inferred as a leaf")


def layer_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    return getattr(value, "type", None)


def _validate_layer(value: Any) -> Layer:
    """Dispatch on ``type`` to the one layer class it names; ``- ReLU`` is ``- {type: ReLU}``.

    A hand-written discriminator rather than a pydantic union: only the layer types a spec uses
    get their validators built, which keeps `torchspec check` quick. Errors keep pydantic's
    union error types, so messages and locations are the same as a discriminated union's.
    """
    if isinstance(value, Layer):
        return value
    data = {"type": value} if isinstance(value, str) else value
    tag = layer_tag(data)
    cls = REGISTRY.get(tag) if tag is not None else None
    if cls is not None:
        return cls.model_validate(data)
    if tag is not None:
        raise PydanticCustomError(
            "union_tag_invalid",
            "unknown layer type {tag!r}",
            {"discriminator": "type", "tag": tag, "expected_tags": ", ".join(REGISTRY)},
        )
    raise PydanticCustomError(
        "union_tag_not_found",
        "a layer is a type name or a mapping with 'type'",
        {"discriminator": "type"},
    )


# In the JSON Schema a layer item is this marker; torchspec.schema makes it a `Layer` reference.
LAYER_SCHEMA_MARKER = {"x-torchspec": "layer"}
AnyLayer = Annotated[
    SerializeAsAny[Layer], PlainValidator(_validate_layer), WithJsonSchema(LAYER_SCHEMA_MARKER)
]
