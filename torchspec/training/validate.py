"""Validating the ``train`` section into located problems (below the spec: it never imports it;
:mod:`torchspec.training.resolve` puts a spec, its ``--set`` overrides and this together).

Torch-free. pydantic's errors are walked against the user's data by :func:`torchspec.diagnose.walk`
(dropping the ``type``/``source`` union tags), unknown keys and unknown names get did-you-mean
suggestions from the right family (losses, optimizers, ...), and the rest is handed to
:func:`torchspec.pydantic_errors.problems_from_errors` with a ``("train",)`` prefix.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from torchspec.diagnose import DocumentLike, did_you_mean, node_at, walk, where
from torchspec.errors import Problem, SpecError
from torchspec.layers import REGISTRY
from torchspec.pydantic_errors import problems_from_errors
from torchspec.source import Path
from torchspec.training.config import DATA_SOURCES, LOSSES, OPTIMIZERS, SCHEDULERS, TrainConfig
from torchspec.training.folder_config import folder_problems
from torchspec.training.transform_config import TRANSFORMS

__all__ = ["train_problems", "validate_config"]

_FAMILIES: dict[str, tuple[str, str, dict[str, type[BaseModel]]]] = {
    # key in train: (what it is, tag field, classes by tag)
    "loss": ("loss", "type", LOSSES),  # type: ignore[dict-item]
    "optimizer": ("optimizer", "type", OPTIMIZERS),  # type: ignore[dict-item]
    "scheduler": ("scheduler", "type", SCHEDULERS),  # type: ignore[dict-item]
    "data": ("data source", "source", DATA_SOURCES),  # type: ignore[dict-item]
    "val": ("data source", "source", DATA_SOURCES),  # type: ignore[dict-item]
    "transform": ("transform", "type", TRANSFORMS),  # type: ignore[dict-item]
    "eval_transform": ("transform", "type", TRANSFORMS),  # type: ignore[dict-item]
}
_EXAMPLE = "add e.g. `train: {data: synthetic-motion, epochs: 5, optimizer: {type: Adam, lr: 0.001}}`"


def _owner(node: Any) -> tuple[str | None, type[BaseModel] | None]:
    """A train mapping's tag (``Adam``, ``synthetic-motion``) and its model class."""
    if isinstance(node, dict):
        for _what, tag, classes in _FAMILIES.values():
            name = node.get(tag)
            if isinstance(name, str) and name in classes:
                return name, classes[name]
    return None, None


def _fields_of(type_name: str | None) -> list[str]:
    if type_name is None:
        return list(TrainConfig.model_fields)
    for _what, tag, classes in _FAMILIES.values():
        if type_name in classes:
            return [f for f in classes[type_name].model_fields if f != tag]
    cls = REGISTRY.get(type_name)
    return [info.alias or f for f, info in cls.model_fields.items() if f != "type"] if cls else []


def train_problems(doc: DocumentLike, errors: list[Any], prefix: Path = ("train",)) -> list[Problem]:
    """Located problems for pydantic errors of a TrainConfig validated at ``prefix`` in ``doc``."""
    problems: list[Problem] = []
    others: list[Any] = []
    for err in errors:
        path, rest, _ = walk(doc.data, (*prefix, *err["loc"]), ("type", "source"), labels=False)
        kind = err["type"]
        if kind == "extra_forbidden":
            parent, name = path[:-1], str(path[-1])
            owner, cls = _owner(node_at(doc.data, parent))
            if cls is not None:
                tag = "source" if "source" in cls.model_fields else "type"
                known = [f for f in cls.model_fields if f != tag]
                message = f"{owner} ({where(parent)}) has no parameter '{name}'"
            else:
                known = list(TrainConfig.model_fields) if parent == prefix else []
                message = f"unknown key '{name}' in {where(parent)}"
            guess = did_you_mean(name, known, plain=True)
            hints = [guess] if guess else (["known: " + ", ".join(known)] if known else [])
            problems.append(doc.problem(path, message, hints, key=True))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            # a list item (a transform) belongs to the family of its list's key
            key = path[-2] if len(path) > 1 and isinstance(path[-1], int) else (path[-1] if path else "")
            family = _FAMILIES.get(str(key), ("value", "type", {}))
            what, tag, classes = family
            found = err.get("ctx", {}).get("tag")
            node = node_at(doc.data, path)
            target = (*path, tag) if isinstance(node, dict) and tag in node else path
            if kind == "union_tag_invalid" and isinstance(found, str):
                message = f"unknown {what} '{found}' at {where(path)}"
                guess = did_you_mean(found, classes, plain=True)
                hints = [guess] if guess else []
            else:
                article = "an" if what[0] in "aeiou" else "a"
                message = f"{where(path)} must be {article} {what} name or a mapping with '{tag}'"
                hints = []
            hints.append("known: " + ", ".join(classes))
            problems.append(doc.problem(target, message, hints))
        elif kind == "missing" and rest:
            node = node_at(doc.data, path)
            named: str | None = node if isinstance(node, str) else _owner(node)[0]
            message = f"{named or 'the mapping'} ({where(path)}) is missing required parameter '{rest[0]}'"
            problems.append(doc.problem(path, message, [f"add `{rest[0]}: ...`"]))
        else:
            others.append({**err, "loc": (*path, *rest)})
    return problems + problems_from_errors(doc, others, _fields_of, REGISTRY)


def validate_config(doc: DocumentLike, data: Any) -> TrainConfig:
    """``data`` (a spec's ``train`` section) as a :class:`TrainConfig`; a located SpecError."""
    if data is None:
        raise SpecError([doc.problem((), "the spec has no `train` section", [_EXAMPLE])])
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise SpecError(train_problems(doc, exc.errors())) from None
    problems = folder_problems(doc, config)  # declared clip and crop sizes against the input
    if problems:
        raise SpecError(problems)
    return config
