"""The diagnostics every stage of the compiler uses, beneath all of them: did-you-mean, how a path
(``layers[0].layers[3]``), a name or a found value reads in a message, problems in file order, and
the walk of pydantic's ``loc`` paths against the user's data.

pydantic reports ``loc`` paths through the model (with union tags such as ``"Conv3d"`` and union
member labels such as ``"list[constrained-int]"`` inside); :func:`walk` follows each against the
data to find the node the user wrote. The wording of each kind of error is in
:mod:`torchspec.messages`; :mod:`torchspec.pydantic_errors` joins the two. This module imports
nothing of torchspec but :mod:`torchspec.errors`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torchspec.errors import Problem

__all__ = [
    "DocumentLike",
    "describe",
    "did_you_mean",
    "node_at",
    "parse_errors",
    "quote",
    "sort_problems",
    "suggest",
    "walk",
    "where",
]

Path = tuple[str | int, ...]
FieldsOf = Callable[[str | None], "Iterable[str] | None"]

# What each type error asks for, for "must be an int or a list" when every union member fails.
_NOUNS = {
    "int_type": "an int",
    "int_parsing": "an int",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


class DocumentLike(Protocol):
    """What diagnose needs from a document: the data and located problems.

    A :class:`~torchspec.source.Document` also offers ``value_pos``/``line_text``/``fmt``; when
    present they let messages quote the word the user typed (``no`` rather than "false").
    """

    file: str
    data: Any

    def problem(
        self, path: Path, message: str, hints: Sequence[str] = (), *, key: bool = False
    ) -> Problem: ...


# -- small helpers (used by every stage) ---------------------------------------------------------


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name, case-insensitively ("relu" -> "ReLU", "Conv4d" -> "Conv3d")."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.7)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, choices: Iterable[str], *, plain: bool = False) -> str | None:
    """The did-you-mean hint for an unknown ``word``, or None when nothing is close.

    A guess that is ``word`` itself is no hint, and one that differs only in case says names are
    case-sensitive; ``plain`` (the train section's wording) offers any guess as "did you mean".
    """
    guess = suggest(word, choices)
    if guess is None:
        return None
    if not plain:
        if guess == word:
            return None
        if guess.lower() == word.lower():
            return f"names are case-sensitive: did you mean '{guess}'?"
    return f"did you mean '{guess}'?"


def where(path: Path) -> str:
    """``layers[0].layers[3]``; the root is "spec"."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "spec"


def quote(text: str, limit: int = 60) -> str:
    """``'name'`` for a user-written name in a message: escaped if odd, shortened if long."""
    shown = text if len(text) <= limit else f"{text[: limit - 15]}...{text[-10:]}"
    return f"'{shown}'" if shown.isprintable() and "'" not in shown else repr(shown)


def node_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in plain data, or None where the path does not exist."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def describe(value: Any) -> str:
    """How a found value reads in a message: ``boolean false``, ``string 'x'``, ``list [1, 2]``."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"list {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """File order (line, column); unlocated problems keep their order, after located ones."""
    return sorted(problems, key=lambda p: (p.line == 0, p.line, p.col))


def _tag(node: Any) -> str | None:
    """A layer's type name: the ``type`` of a mapping, or a bare name like ``- ReLU``."""
    if isinstance(node, dict):
        tag = node.get("type")
        return tag if isinstance(tag, str) else None
    return node if isinstance(node, str) else None


# -- walking pydantic's loc against the data ------------------------------------------------------


def walk(
    data: Any, loc: Sequence[str | int], tags: Sequence[str] = ("type",), *, labels: bool = True
) -> tuple[Path, Path, Path | None]:
    """Where pydantic's ``loc`` leads in ``data``: (the path of the node it names, the rest of ``loc``
    from the first step the data does not have, where a union member label was skipped).

    Union tags are not in the data: the value of a ``tags`` key of a mapping (``"Conv3d"`` for
    ``{type: Conv3d}``; the train section's tags are ``("type", "source")``) or a bare name like
    ``Conv3d`` is skipped, once per node. With ``labels``, so are the labels of union members
    (``"constrained-int"``, ``"list[...]"``); without, the walk stops at them.
    """
    path: list[str | int] = []
    node, tagged, union_root = data, False, None
    for index, step in enumerate(loc):
        if not tagged and isinstance(step, str) and _is_tag(node, step, tags):
            tagged = True  # the discriminated-union tag, once per node
        elif _has(node, step):
            node, tagged = node[step], False
            path.append(step)
        elif labels and isinstance(step, str) and not isinstance(node, dict):
            if union_root is None:
                union_root = tuple(path)  # a union member's label below a list or a scalar
        elif labels and isinstance(step, str) and isinstance(node, dict) and ("[" in step or "-" in step):
            if union_root is None:
                union_root = tuple(path)  # e.g. "function-plain[...]" or "nullable[int]"
        else:
            return tuple(path), tuple(loc[index:]), union_root
    return tuple(path), (), union_root


def _is_tag(node: Any, step: str, tags: Sequence[str]) -> bool:
    if isinstance(node, dict):
        return any(isinstance(node.get(key), str) and node.get(key) == step for key in tags)
    return isinstance(node, str) and step == node


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


# -- the parsed error -----------------------------------------------------------------------------


@dataclass
class _Err:
    kind: str
    path: Path  # the node in the data
    union_root: Path | None
    found: Any
    msg: str
    ctx: dict[str, Any]
    field: str | None = None  # a missing key's name

    @property
    def is_type_error(self) -> bool:
        return self.kind in _NOUNS


def _parse(data: Any, err: Any) -> _Err:
    loc = tuple(err.get("loc", ()))
    kind = str(err.get("type", ""))
    field = None
    if kind == "missing" and loc and isinstance(loc[-1], str):
        loc, field = loc[:-1], loc[-1]
    path, _rest, union_root = walk(data, loc)
    msg = str(err.get("msg", ""))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return _Err(kind, path, union_root, err.get("input"), msg, dict(err.get("ctx") or {}), field)


def _merge_union_errors(errs: list[_Err]) -> list[_Err]:
    """One error per value that fails every member of a union.

    A member the value does not even have the type of (``size: [1, 2, 3, 4]`` is no int) says less
    than the member it fails a rule of (the list is too long): those type errors are dropped. When
    every member fails on type, their wants are joined: "must be an int or a list".
    """
    by_root: dict[Path, list[_Err]] = {}
    for e in errs:
        if e.union_root is not None:
            by_root.setdefault(e.union_root, []).append(e)
    out: list[_Err] = []
    done: set[Path] = set()
    for e in errs:
        root = e.union_root
        if root is None:
            out.append(e)
            continue
        if root in done:
            continue
        done.add(root)
        group = by_root[root]
        rules = [g for g in group if not (g.is_type_error and g.path == root)]
        if rules:
            out.extend(rules)
            continue
        wants = list(dict.fromkeys(_NOUNS[g.kind] for g in group))
        first = group[0]
        out.append(_Err("union_type", root, None, first.found, "", {"wants": wants}))
    return out


def parse_errors(data: Any, errors: list[Any]) -> list[_Err]:
    """pydantic's ``errors`` located in ``data``, one per value that fails every member of a union."""
    return _merge_union_errors([_parse(data, err) for err in errors])
