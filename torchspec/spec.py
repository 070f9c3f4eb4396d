"""The spec format (v1): ``name``, ``description``, ``input``, ``layers`` and, for training, ``train``.

``load_spec`` reads a file (or takes a mapping), validates it with pydantic and turns every failure,
all of them at once, into a :class:`~torchspec.errors.SpecError` located in the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from torchspec.diagnose import problems_from_errors, where
from torchspec.errors import Problem, SpecError
from torchspec.layers import REGISTRY, AnyLayer, Layer, Sequential
from torchspec.layers.fields import PosInt
from torchspec.source import Document, Path, load_document

__all__ = ["Spec", "load_spec", "walk_layers"]


class Spec(BaseModel):
    """A model: the per-sample ``input`` shape (no batch dimension) and its ``layers``."""

    model_config = ConfigDict(extra="forbid", strict=True, title="torchspec model spec")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str | None = None
    input: Annotated[
        list[PosInt],
        Field(min_length=1, max_length=7, description="one sample's shape, e.g. [3, 16, 112, 112]"),
    ]
    layers: Annotated[list[AnyLayer], Field(min_length=1)]
    train: dict[str, Any] | None = Field(
        default=None, description="how to train the model (see `torchspec train`)"
    )

    _doc: Document | None = PrivateAttr(default=None)

    @property
    def document(self) -> Document:
        """The source the spec came from (positions for messages)."""
        if self._doc is None:
            self._doc = Document("<spec>", "", self.to_data(), {}, {})
        return self._doc

    def to_data(self) -> dict[str, Any]:
        """The spec as plain data, as a user would write it (what was set, nothing added)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        out["input"] = list(self.input)
        out["layers"] = [_layer_data(layer) for layer in self.layers]
        if self.train is not None:
            out["train"] = self.train
        return out


def _layer_data(layer: Layer) -> dict[str, Any]:
    data = layer.data()
    if isinstance(layer, Sequential):
        data["layers"] = [_layer_data(child) for child in layer.layers]
    return data


def _fields_of(type_name: str | None) -> list[str]:
    if type_name is None:
        return list(Spec.model_fields)
    cls = REGISTRY.get(type_name)
    return [f for f in cls.model_fields if f != "type"] if cls else []


def walk_layers(
    layers: list[Layer], data_path: Path = ("layers",), prefix: str = ""
) -> list[tuple[str, Path, Layer]]:
    """Every layer in order, depth first: (dotted module path, data path, layer)."""
    out: list[tuple[str, Path, Layer]] = []
    for index, layer in enumerate(layers):
        name = layer.name or str(index)
        path = f"{prefix}.{name}" if prefix else name
        out.append((path, (*data_path, index), layer))
        if isinstance(layer, Sequential):
            out.extend(walk_layers(layer.layers, (*data_path, index, "layers"), path))
    return out


def _duplicate_names(doc: Document, layers: list[Layer], path: Path) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, layer in enumerate(layers):
        if layer.name is not None:
            if layer.name in first:
                problems.append(
                    doc.problem(
                        (*path, index, "name"),
                        f"duplicate layer name '{layer.name}' (first at {where(path)}[{first[layer.name]}])",
                        ["names are unique among siblings: they become the state_dict keys"],
                    )
                )
            first.setdefault(layer.name, index)
        if isinstance(layer, Sequential):
            problems += _duplicate_names(doc, layer.layers, (*path, index, "layers"))
    return problems


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any] | Spec) -> Spec:
    """Read and validate a spec from a .yaml/.yml/.json path or a mapping; raises SpecError."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, Mapping):
        doc = Document("<spec>", "", dict(source), {}, {})
    else:
        doc = load_document(source)
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(problems_from_errors(doc, exc.errors(), _fields_of)) from None
    problems = _duplicate_names(doc, spec.layers, ("layers",))
    if problems:
        raise SpecError(problems)
    spec._doc = doc
    return spec
