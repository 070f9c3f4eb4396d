"""The layer registry: every layer torchspec knows, each defined once in its family module.

``AnyLayer`` is a layer of any registered type, chosen by its ``type`` tag; the spec model holds a
list of them, and so does ``Sequential``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PlainValidator, SerializeAsAny, WithJsonSchema
from pydantic_core import PydanticCustomError

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
    "FAMILIES",
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
    "load_all",
    "register",
    "tensors_of",
]


# The family modules, each defining its layers once with @register. They are imported lazily (see
# registry.Registry): only the families a spec uses are built, which keeps `torchspec check` quick.
FAMILIES = (
    "activation",
    "attention",
    "conv",
    "distance",
    "dropout",
    "linear",
    "merge",
    "norm_batch",  # before norm: the registry (and the schema) lists BatchNorm first
    "norm",
    "padding",
    "pool",
    "pool_other",
    "rearrange",
    "recurrent",
    "reshape",
    "sparse",
    "tensor",
    "transformer",
)
_DECLARED = re.compile(r'^    type: Literal\["(\w+)"\]', re.M)


def _index() -> dict[str, str]:
    """Layer type name -> family module, read from the ``type: Literal["Name"]`` declarations
    (reading 14 small files is far cheaper than building their classes)."""
    here = Path(__file__).parent
    found: dict[str, str] = {}
    for family in FAMILIES:
        for name in _DECLARED.findall((here / f"{family}.py").read_text(encoding="utf-8")):
            found[name] = f"torchspec.layers.{family}"
    return found


REGISTRY.index(_index())


def load_all() -> None:
    """Import every family module (the schema and the tests want every class)."""
    for family in FAMILIES:
        importlib.import_module(f"torchspec.layers.{family}")


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
