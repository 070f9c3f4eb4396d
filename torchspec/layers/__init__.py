"""The layer registry: every layer torchspec knows, each defined once in its family module.

``AnyLayer`` is the discriminated union (tag: ``type``) of all registered layers, used by the spec
model; ``Sequential`` nests a list of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag

from torchspec.layers import activation, conv, linear, norm, pool, reshape  # noqa: F401  (register)
from torchspec.layers.base import (
    REGISTRY,
    Inferred,
    Layer,
    Shape,
    ShapeError,
    fmt_shape,
    register,
)

__all__ = [
    "REGISTRY",
    "AnyLayer",
    "Inferred",
    "Layer",
    "Sequential",
    "Shape",
    "ShapeError",
    "fmt_shape",
    "layer_tag",
    "register",
]


@register
class Sequential(Layer):
    """A nested ``nn.Sequential``; its children are named by ``name`` or numbered from 0."""

    type: Literal["Sequential"] = "Sequential"
    container: ClassVar[bool] = True

    layers: Annotated[list[AnyLayer], Field(min_length=1)]

    def infer(self, shape: Shape) -> Inferred:  # pragma: no cover - walked by torchspec.infer
        raise TypeError("Sequential is walked by torchspec.infer, not inferred as a leaf")


def _bare_name(value: Any) -> Any:
    """``- ReLU`` is short for ``- {type: ReLU}``."""
    return {"type": value} if isinstance(value, str) else value


def layer_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    return getattr(value, "type", None)


if TYPE_CHECKING:
    AnyLayer = Layer
else:
    AnyLayer = Annotated[
        Union[tuple(Annotated[cls, Tag(name)] for name, cls in REGISTRY.items())],  # noqa: UP007
        Discriminator(layer_tag),
        BeforeValidator(_bare_name),
    ]

# Sequential resolves AnyLayer lazily (defer_build): building it here would build the union twice.
