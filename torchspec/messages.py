"""The wording of located problems: one message and its hints per kind of pydantic error.

:func:`torchspec.pydantic_errors.problems_from_errors` parses and merges the errors; here each becomes
"FIELD must be RULE, found WHAT" in the user's words, with hints for the likely fix in the
document's own format, YAML or JSON (a YAML 1.1 boolean word such as ``no`` is text in the YAML 1.2
torchspec reads: the hint says to write ``false``). The rule bodies are :mod:`torchspec.value_rules`,
the format-aware phrasing :mod:`torchspec.wording`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torchspec.catalogue import explain_unknown
from torchspec.diagnose import (
    DocumentLike,
    FieldsOf,
    Path,
    _Err,
    _tag,
    did_you_mean,
    node_at,
    quote,
    suggest,
    where,
)
from torchspec.errors import Problem
from torchspec.value_rules import BUILTIN_KINDS, hints_for_found, rule_message
from torchspec.wording import (
    as_string,
    brief,
    found_text,
    is_yaml,
    join_words,
    key_value,
    layer_example,
    owner_of,
    subject_of,
)

__all__ = ["bad_layer", "missing_keys", "unknown_key", "value_problem"]

_SPEC_SHAPE = "a spec has `name:`, `input:` (one sample's shape, e.g. [3, 32, 32]) and `layers:` (a list)"

# -- one problem per kind of error ---------------------------------------------------------------


def missing_keys(doc: DocumentLike, path: Path, fields: list[str], extra: Iterable[str]) -> list[Problem]:
    """Required keys missing at ``path``, less those an unknown key in ``extra`` is a misspelling of."""
    misspelt = {suggest(name, fields) for name in extra}
    fields = [f for f in dict.fromkeys(fields) if f not in misspelt]
    if not fields:
        return []
    names = join_words([f"'{f}'" for f in fields])
    plural = "s" if len(fields) > 1 else ""
    node = node_at(doc.data, path)
    owner, owner_path = owner_of(doc.data, path)
    adds = ", ".join(key_value(doc, f, "...") for f in fields)
    if not path:
        message = f"the spec is missing required top-level key{plural} {names}"
        return [doc.problem(path, message, [_SPEC_SHAPE])]
    if owner is not None and owner_path == path:
        message = f"{owner} ({where(path)}) is missing required parameter{plural} {names}"
        if isinstance(node, str):
            pairs = [key_value(doc, "type", owner if is_yaml(doc) else f'"{owner}"')]
            pairs += [key_value(doc, f, "...") for f in fields]
            example = "{" + ", ".join(p.strip("`") for p in pairs) + "}"
            example = f"`- {example}`" if is_yaml(doc) else f"`{example}`"
            hints = [f"a bare name takes no parameters; write the layer as a mapping: {example}"]
        else:
            hints = [f"add {adds} to this layer"]
        return [doc.problem(path, message, hints)]
    message = f"{where(path)} is missing required key{plural} {names}"
    return [doc.problem(path, message, [f"add {adds}"])]


def unknown_key(doc: DocumentLike, path: Path, fields_of: FieldsOf) -> Problem:
    """A key no model knows, with the closest known name or the list of known ones."""
    name = str(path[-1])
    parent = path[:-1]
    owner, owner_path = owner_of(doc.data, parent)
    if owner is not None and owner_path == parent:
        known = list(fields_of(owner) or [])
        message = f"{owner} ({where(parent)}) has no parameter {quote(name)}"
        listing = f"{owner} takes: " + ", ".join(known) if known else f"{owner} takes no parameters"
    elif not parent:
        known = list(fields_of(None) or [])
        message = f"unknown top-level key {quote(name)}"
        listing = "the top-level keys are: " + ", ".join(known)
    else:
        known = []
        message = f"unknown key {quote(name)} in {where(parent)}"
        listing = ""
    guess = did_you_mean(name, known)
    hints = [guess] if guess else [listing] if listing else []
    return doc.problem(path, message, hints, key=True)


def bad_layer(doc: DocumentLike, e: _Err, layers: Mapping[str, Any]) -> tuple[Path, str, list[str]]:
    """A list item that is no layer: an unknown type name, no ``type``, or not a layer at all.

    ``layers`` maps the known layer type names to their classes (the registry).
    """
    path, found = e.path, e.found
    tag = e.ctx.get("tag")
    if e.kind == "union_tag_invalid" and isinstance(tag, str):
        target = (*path, "type") if isinstance(found, dict) else path
        explained = explain_unknown(tag, layers)
        if explained is not None:  # LazyLinear, a loss, a container: why, and what to use
            why, hints = explained
            return target, f"{where(path)}: {quote(tag)} is not a spec layer: {why}", hints
        guess = did_you_mean(tag, layers)
        hints = (
            [guess]
            if guess
            else [
                "layer types are torch.nn class names such as Conv2d, Linear or ReLU; "
                "`torchspec schema` lists them all"
            ]
        )
        return target, f"{where(path)}: unknown layer type {quote(tag)}", hints
    if isinstance(found, dict) and "type" not in found:
        guess = next((k for k in found if isinstance(k, str) and suggest(k, ["type"])), None)
        if guess is not None:
            message = f"{where(path)}: the layer has no 'type' (found key {quote(guess)})"
            return (*path, guess), message, ["did you mean 'type'?"]
        message = f"{where(path)}: the layer has no 'type'"
        return path, message, [f"add the layer type, e.g. {key_value(doc, 'type', as_string(doc, 'Linear'))}"]
    if isinstance(found, dict):
        message = f"{where(path)}: type must be a layer type name, found {brief(found['type'])}"
        return (*path, "type"), message, [f"e.g. {key_value(doc, 'type', as_string(doc, 'Conv2d'))}"]
    what = found_text(doc, path, found)
    message = f"{where(path)} must be a layer (a type name or a mapping with 'type'), found {what}"
    return path, message, [f"write e.g. {layer_example(doc)}"]


def value_problem(doc: DocumentLike, e: _Err, layers: Mapping[str, Any]) -> tuple[Path, str, list[str]]:
    """A value that breaks a rule: (where, "FIELD must be RULE, found WHAT", hints); ``layers`` as
    for :func:`bad_layer` (a field's other bound, a layer's spatial dimensions)."""
    path, kind = e.path, e.kind
    node = node_at(doc.data, path)
    if path and isinstance(node, dict) and _tag(node) and kind not in BUILTIN_KINDS:
        # a rule of the whole layer (e.g. Upsample needs one of size/scale_factor)
        tag = str(_tag(node))
        return path, f"{tag} ({where(path)}): {e.msg.removeprefix(tag + ' ')}", []
    label, field, owner = subject_of(doc.data, path)
    found = found_text(doc, path, e.found)
    hints = hints_for_found(doc, e, field)
    top = path[:1] if not owner and path else ()
    message = rule_message(doc, kind, field, found, e, owner, hints, top, layers.get(owner or ""))
    return path, label + message, hints
