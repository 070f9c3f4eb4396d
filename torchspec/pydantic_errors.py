"""Turns pydantic's validation errors into located, readable problems.

Each error is walked against the user's data to the node the user wrote
(:func:`torchspec.diagnose.parse_errors`), worded in the user's terms (:mod:`torchspec.messages`:
"kernel_size must be an int >= 1 ..., found `no`, which YAML 1.1 reads as false") and located in
the file. What a stage knows of its vocabulary (a layer type's parameters, the layer types) is
passed in, so the diagnostics stay beneath every stage and import none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchspec.diagnose import DocumentLike, FieldsOf, Path, parse_errors, sort_problems
from torchspec.errors import Problem
from torchspec.messages import bad_layer, missing_keys, unknown_key, value_problem

__all__ = ["problems_from_errors"]


def problems_from_errors(
    doc: DocumentLike, errors: list[Any], fields_of: FieldsOf, layers: Mapping[str, Any]
) -> list[Problem]:
    """Located problems for pydantic ``errors``, in file order.

    ``fields_of(type_name)`` lists the parameters of a layer type (``None``: the top-level keys),
    for did-you-mean suggestions; it may return None for an unknown name. ``layers`` maps each
    layer type name to its class (the registry): the names an unknown type is matched against,
    each class's field bounds and ``sample_layout`` for the wording.
    """
    errs = parse_errors(doc.data, errors)

    # unknown keys first: a misspelt required key is reported once, as the unknown key
    extra: dict[Path, list[str]] = {}
    missing: dict[Path, list[str]] = {}
    for e in errs:
        if e.kind == "extra_forbidden" and e.path:
            extra.setdefault(e.path[:-1], []).append(str(e.path[-1]))
        elif e.kind == "missing" and e.field is not None:
            missing.setdefault(e.path, []).append(e.field)

    problems: list[Problem] = []
    seen: set[tuple[Path, str]] = set()
    for e in errs:
        if e.kind == "missing" and e.field is not None:
            if e.path in missing:
                problems.extend(missing_keys(doc, e.path, missing.pop(e.path), extra.get(e.path, ())))
            continue
        if e.kind == "extra_forbidden" and e.path:
            problems.append(unknown_key(doc, e.path, fields_of))
            continue
        if e.kind in ("union_tag_invalid", "union_tag_not_found"):
            target, message, hints = bad_layer(doc, e, layers)
        else:
            target, message, hints = value_problem(doc, e, layers)
        if (target, message) in seen:
            continue
        seen.add((target, message))
        problems.append(doc.problem(target, message, hints))
    return sort_problems(problems)
