"""A spec ready to train: load it, apply ``--set`` overrides, validate the spec and its ``train``.

Above both :mod:`torchspec.spec` and :mod:`torchspec.training.validate` (which never import it).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from torchspec.errors import SpecError
from torchspec.expand import expand_document
from torchspec.layers import REGISTRY
from torchspec.pydantic_errors import problems_from_errors
from torchspec.source import Document, Path, load_document
from torchspec.spec import Spec, spec_fields
from torchspec.training.config import TrainConfig
from torchspec.training.overrides import apply_overrides
from torchspec.training.validate import validate_config

__all__ = ["resolve_spec", "validate_train"]


def validate_train(spec: Spec) -> TrainConfig:
    """The spec's ``train`` section as a :class:`TrainConfig`; raises a located SpecError."""
    train: Any = spec.train
    if isinstance(train, TrainConfig):
        return train
    if isinstance(train, BaseModel):  # plugged into Spec as another model: revalidate its data
        train = train.model_dump(exclude_unset=True)
    return validate_config(spec.document, train)


def resolve_spec(
    source: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    overrides: Iterable[str] = (),
    *,
    variant: str | None = None,
) -> tuple[Spec, TrainConfig]:
    """Load a spec, apply ``--set`` overrides, expand it (``variant``: one of its variants),
    validate the spec and its train section."""
    if isinstance(source, Spec):
        doc = source.document
    elif isinstance(source, Mapping):
        doc = Document("<spec>", "", copy.deepcopy(dict(source)), {}, {})
    else:
        doc = load_document(source)
    data = copy.deepcopy(doc.data)
    defaults: dict[Path, str] = {("train", "loss"): "CrossEntropyLoss", ("train", "optimizer"): "Adam"}
    owned = apply_overrides(data, overrides, defaults)
    # the same file and positions, the overridden data, and which paths the command line set
    # (expanded: blocks, repeats and vars written out; positions map back to the file)
    where_doc = expand_document(replace(doc, data=data, overrides=owned), variant=variant, builtin=REGISTRY)
    data = where_doc.data
    try:
        spec = Spec.model_validate({k: v for k, v in data.items() if k != "train"})
    except ValidationError as exc:
        raise SpecError(problems_from_errors(where_doc, exc.errors(), spec_fields, REGISTRY)) from None
    config = validate_config(where_doc, data.get("train"))
    spec = spec.model_copy(update={"train": data.get("train")})
    spec._doc = where_doc
    return spec, config
