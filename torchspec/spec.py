"""The spec format (v1): ``name``, ``description``, ``input``, ``layers`` and, for training, ``train``.

``load_spec`` reads a file (or takes a mapping), validates it with pydantic and turns every failure,
all of them at once, into a :class:`~torchspec.errors.SpecError` located in the file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from torchspec.diagnose import quote, sort_problems, where
from torchspec.errors import Problem, SpecError
from torchspec.expand import expand_document
from torchspec.inputs import InputShape, TensorInput, input_data, input_dtype, input_range, input_shape
from torchspec.layers import REGISTRY, AnyLayer, Layer, Sequential
from torchspec.pydantic_errors import problems_from_errors
from torchspec.source import Document, Path, load_document

__all__ = ["Spec", "load_spec", "spec_fields", "walk_layers"]


class Spec(BaseModel):
    """A model: the per-sample ``input`` shape (no batch dimension) and its ``layers``."""

    model_config = ConfigDict(extra="forbid", strict=True, title="torchspec model spec")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str | None = None
    input: InputShape | TensorInput = Field(
        description="one sample's shape, e.g. [3, 16, 112, 112], or {shape, dtype, low, high} "
        "for inputs that are not float (token ids: {shape: [64], dtype: int64, high: 10000})"
    )
    layers: Annotated[list[AnyLayer], Field(min_length=1)]  # type: ignore[valid-type]
    train: dict[str, Any] | None = Field(
        default=None, description="how to train the model (see `torchspec train`)"
    )

    _doc: Document | None = PrivateAttr(default=None)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape (no batch dimension), whichever form ``input`` has."""
        return input_shape(self.input)

    @property
    def input_dtype(self) -> str:
        """``float32`` or ``int64`` (token ids)."""
        return input_dtype(self.input)

    @property
    def input_range(self) -> tuple[int, int | None] | None:
        """``(low, high)`` of an int64 input (high None when not declared); None for float32."""
        return input_range(self.input)

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
        out["input"] = input_data(self.input)
        out["layers"] = [_layer_data(layer) for layer in self.layers]
        if self.train is not None:
            out["train"] = self.train
        return out


def _layer_data(layer: Layer) -> dict[str, Any]:
    data = layer.data()
    if isinstance(layer, Sequential):
        data["layers"] = [_layer_data(child) for child in layer.layers]
    return data


def spec_fields(type_name: str | None) -> list[str]:
    """The keys a spec (None) or a layer type takes, as written in a spec (``from``, not ``from_``)."""
    if type_name is None:
        return list(Spec.model_fields)
    cls = REGISTRY.get(type_name)
    return [info.alias or f for f, info in cls.model_fields.items() if f != "type"] if cls else []


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


def _duplicate_names(doc: Document, layers: Any, path: Path) -> list[Problem]:
    """Sibling layers sharing a ``name``, found in the raw data so they join the schema errors."""
    problems: list[Problem] = []
    if not isinstance(layers, list):
        return problems
    first: dict[str, int] = {}
    for index, item in enumerate(layers):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if isinstance(name, str):
            if name in first:
                line = doc.pos((*path, first[name], "name")).line if doc.text else 0
                at = where((*path, first[name])) + (f" (line {line})" if line else "")
                problems.append(
                    doc.problem(
                        (*path, index, "name"),
                        f"duplicate layer name {quote(name)}: already used by {at}",
                        [
                            "sibling layers need distinct names: they become the module names and "
                            "state_dict keys; rename one or drop `name:` to number it"
                        ],
                    )
                )
            first.setdefault(name, index)
        if item.get("type") == "Sequential":
            problems += _duplicate_names(doc, item.get("layers"), (*path, index, "layers"))
    return problems


def _unlocated(doc: Document, problems: list[Problem]) -> list[Problem]:
    """A spec given as a mapping has no file: its problems carry no line, column or source line."""
    if doc.text or doc.value_pos:
        return problems
    return [replace(p, line=0, col=0, source_line=None) for p in problems]


def _train_problems(doc: Document) -> list[Problem]:
    """The ``train`` section is checked with the rest, so `check` catches its mistakes too.

    Its models load only for specs that have one: a spec without ``train`` pays nothing for them.
    """
    from torchspec.training.config import TrainConfig
    from torchspec.training.folder_config import folder_problems
    from torchspec.training.validate import train_problems

    try:
        config = TrainConfig.model_validate(doc.data["train"])
    except ValidationError as exc:
        return train_problems(doc, exc.errors())
    return folder_problems(doc, config)  # declared clip and crop sizes against the input


def load_spec(
    source: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    *,
    variant: str | None = None,
    overrides: Iterable[str] = (),
    expand: bool = True,
) -> Spec:
    """Read and validate a spec from a .yaml/.yml/.json path or a mapping; raises SpecError.

    ``overrides`` are ``--set`` arguments (``vars.width=32``), applied to the file as written;
    ``variant`` picks one of its ``variants``. Blocks, repeats, conditions and expressions are
    expanded (:mod:`torchspec.expand`) before validation; ``expand=False`` reads an expanded spec
    (one stored in a checkpoint) as it is, so a ``$`` in it stays a ``$``. Every schema problem of
    the spec is reported at once, in file order.
    """
    if isinstance(source, Spec):
        return source
    if isinstance(source, Mapping):
        doc = Document("<spec>", "", copy.deepcopy(dict(source)), {}, {})
    else:
        doc = load_document(source)
    overrides = list(overrides)
    if overrides:
        from torchspec.training.overrides import apply_overrides  # torch-free

        data = copy.deepcopy(doc.data)
        doc = replace(doc, data=data, overrides=apply_overrides(data, overrides))
    try:
        doc = (
            expand_document(doc, variant=variant, builtin=REGISTRY) if expand else replace(doc, expanded=True)
        )
    except SpecError as err:
        raise SpecError(_unlocated(doc, err.problems)) from None
    problems = _duplicate_names(doc, doc.data.get("layers"), ("layers",))
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from_errors(doc, exc.errors(), spec_fields, REGISTRY)
    if isinstance(doc.data.get("train"), dict):
        problems += _train_problems(doc)
    if problems:
        raise SpecError(_unlocated(doc, sort_problems(problems)))
    spec._doc = doc
    return spec
