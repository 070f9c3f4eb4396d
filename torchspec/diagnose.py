"""Turns pydantic's validation errors into located, readable problems.

pydantic reports ``loc`` paths through the model (with union tags such as ``"Conv3d"`` inside);
here each is walked against the user's data to find the node the user wrote, then its position in
the file. Messages name the rule, what was found and the fix; unknown names get suggestions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from torchspec.errors import Problem
from torchspec.layers.fields import describe

__all__ = ["DocumentLike", "problems_from_errors", "suggest", "where"]

Path = tuple[str | int, ...]


class DocumentLike(Protocol):
    file: str
    data: Any

    def problem(
        self, path: Path, message: str, hints: Sequence[str] = (), *, key: bool = False
    ) -> Problem: ...


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name, case-insensitively ("relu" -> "ReLU", "Conv4d" -> "Conv3d")."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _resolve(data: Any, loc: Sequence[str | int]) -> tuple[Path, Path]:
    """Split ``loc`` into the path that exists in ``data`` and what is left (a missing key).

    Union tags and union-member labels in ``loc`` are skipped: they are not in the data.
    """
    path: list[str | int] = []
    node = data
    rest = list(loc)
    while rest:
        step = rest[0]
        if (isinstance(node, dict) and isinstance(step, str) and step in node) or (
            isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        ):
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str) and node.get("type") == step:
            rest.pop(0)  # the discriminated-union tag
            continue
        elif isinstance(node, str) and step == node:
            rest.pop(0)  # a bare layer name standing for {type: name}
            continue
        else:
            break
        path.append(step)
        rest.pop(0)
    if not isinstance(node, (dict, list)):
        rest = []  # labels of union members below a scalar, e.g. ('int',) or ('list[int]',)
    return tuple(path), tuple(rest)


def _owner_type(data: Any, path: Path) -> str | None:
    node = data
    owner = None
    for step in path:
        if isinstance(node, dict) and isinstance(node.get("type"), str):
            owner = node["type"]
        node = node[step]  # type: ignore[index]
    if isinstance(node, dict) and isinstance(node.get("type"), str):
        owner = node["type"]
    return owner


def where(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "spec"


def problems_from_errors(doc: DocumentLike, errors: list[Any], fields_of: Any) -> list[Problem]:
    """``fields_of(type_name)`` lists a layer type's parameters (for did-you-mean), or None."""
    from torchspec.layers import REGISTRY

    problems: list[Problem] = []
    seen: set[Path] = set()
    for err in errors:
        path, rest = _resolve(doc.data, err["loc"])
        kind = err["type"]
        found = err.get("input")
        hints: list[str] = []
        key = False
        target = path
        if kind == "missing" and rest:
            owner = _owner_type(doc.data, path)
            what = f"{owner} " if owner else ""
            message = f"{what}({where(path)}) is missing required parameter '{rest[0]}'"
            hints.append(f"add `{rest[0]}: ...` to this mapping")
        elif kind == "extra_forbidden":
            owner = _owner_type(doc.data, path[:-1])
            name = str(path[-1])
            key = True
            known = fields_of(owner) if owner else fields_of(None)
            if owner:
                message = f"{owner} ({where(path[:-1])}) has no parameter '{name}'"
            else:
                message = f"unknown key '{name}' at {where(path[:-1])}"
            guess = suggest(name, known or [])
            if guess:
                hints.append(f"did you mean '{guess}'?")
            elif known:
                hints.append("known: " + ", ".join(sorted(known)))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            tag = err.get("ctx", {}).get("tag")
            if kind == "union_tag_invalid" and isinstance(tag, str):
                target = path + ("type",) if isinstance(found, dict) else path
                message = f"unknown layer type '{tag}' at {where(path)}"
                guess = suggest(tag, REGISTRY)
                hints.append(
                    f"did you mean '{guess}'?" if guess else "run `torchspec schema` for the list"
                )
            else:
                message = f"a layer at {where(path)} must be a type name or a mapping with 'type', found {describe(found)}"
                hints.append("write e.g. `- ReLU` or `- {type: Linear, out_features: 10}`")
        else:
            message, more = _value_message(err, path, doc)
            hints.extend(more)
        if target in seen and kind not in ("missing", "extra_forbidden"):
            continue  # one problem per value: the first member of a union is enough
        seen.add(target)
        problems.append(doc.problem(target, message, hints, key=key))
    return problems


def _value_message(err: Any, path: Path, doc: DocumentLike) -> tuple[str, list[str]]:
    owner = _owner_type(doc.data, path[:-1]) if path else None
    label = f"{owner} ({where(path[:-1])}): " if owner and path else ""
    field = str(path[-1]) if path and isinstance(path[-1], str) else where(path)
    found = err.get("input")
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    hints = []
    if isinstance(found, bool) and err["type"] in ("int_type", "float_type", "string_type", "size"):
        hints.append(
            "YAML 1.1 reads yes/no/on/off/true/false as booleans; write a number, or quote a string"
        )
    if err["type"] in (
        "int_type",
        "float_type",
        "bool_type",
        "string_type",
        "list_type",
        "literal_error",
        "dict_type",
    ):
        msg = f"{msg[0].lower()}{msg[1:]}, found {describe(found)}"
    elif (
        "found" not in msg
        and not isinstance(found, (dict, list))
        and err["type"] not in ("missing",)
    ):
        msg = f"{msg[0].lower()}{msg[1:]} (found {describe(found)})"
    return f"{label}{field}: {msg}", hints
