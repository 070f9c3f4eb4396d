"""``--set key=value``: override any spec value by dotted path before validation.

``train.optimizer.lr=0.1`` sets one value; ``layers.3.out_features=10`` indexes a list; the value is
read by the spec loader itself (:func:`torchspec.source.parse_value`: YAML 1.2 numbers, so ``1``
is an int, ``1e-3`` a float, ``010`` is 10 and ``1:30`` a string; ``[1, 8, 24, 24]`` a list; no
tags; the same size, depth and alias limits as a file). A path through a bare
name (``loss: CrossEntropyLoss``) turns it into a
mapping (``{type: CrossEntropyLoss}``) so ``train.loss.label_smoothing=0.1`` works.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torchspec.errors import Problem, SpecError
from torchspec.source import Path, parse_value

__all__ = ["Override", "apply_overrides", "parse_override", "shown_argument"]

_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
_TAGGED_BY_SOURCE = ("data", "val")  # bare names under these keys are data sources


@dataclass(frozen=True)
class Override:
    arg: str  # exactly as the user wrote it (the resume command repeats it): "train.epochs=1"
    path: Path
    value: Any


def _error(arg: str, message: str, *hints: str) -> SpecError:
    return SpecError([Problem(f"--set {shown_argument(arg)}", 0, 0, message, tuple(hints))])


def shown_argument(arg: str, width: int = 80) -> str:
    """``arg`` as messages show it: a long one keeps its start and end around "..."."""
    return arg if len(arg) <= width else f"{arg[: width - 30]}...{arg[-15:]} ({len(arg)} characters)"


def parse_override(arg: str) -> Override:
    key, sep, text = arg.partition("=")
    shown = shown_argument(arg)
    if not sep or not _KEY.match(key.strip()):
        raise _error(shown, "expected KEY=VALUE with a dotted KEY", "e.g. --set train.optimizer.lr=0.01")
    try:
        value = parse_value(text, f"--set {shown}")
    except SpecError as exc:  # located in the value: say where in the argument as typed
        offset = len(key) + 1
        raise SpecError([_in_argument(shown, offset, text, p) for p in exc.problems]) from None
    path = tuple(int(p) if p.isdigit() else p for p in key.strip().split("."))
    return Override(arg, path, value)


def _in_argument(shown: str, offset: int, text: str, problem: Problem) -> Problem:
    """A problem the loader found in the VALUE of ``--set KEY=VALUE`` (located in the value's own
    lines), placed by its character in the argument as typed; hints about a file's lines dropped."""
    message, hints = problem.message, [h for h in problem.hints if "line" not in h]
    if message.startswith("invalid YAML"):
        message = message.replace("invalid YAML", "the value is not valid YAML", 1)
        hints.append("quote a string value that holds ': ', ' #', '[' or '{', e.g. --set KEY='\"a: b\"'")
    if problem.line:
        lines = text.split("\n")
        character = offset + sum(len(line) + 1 for line in lines[: problem.line - 1]) + problem.col
        if character > offset + 1:  # not simply the value's first character
            message += f" (at character {character} of the argument)"
    return Problem(f"--set {shown}", 0, 0, message, tuple(hints))


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[str], defaults: Mapping[Path, str] | None = None
) -> dict[Path, str]:
    """Apply each ``--set`` to ``data`` in place; returns {changed or created path: argument}.

    ``defaults`` names the tag a missing mapping gets when a path goes through it
    (``train.optimizer.lr`` without an optimizer in the spec starts from the default optimizer).
    """
    owned: dict[Path, str] = {}
    for arg in overrides:
        item = parse_override(arg)
        node: Any = data
        for depth, step in enumerate(item.path[:-1]):
            here, nxt = item.path[: depth + 1], item.path[depth + 1]
            child = _get(node, step, item, here)
            if child is None and defaults and here in defaults:
                child = defaults[here]
            if child is None or isinstance(child, str):
                tag = "source" if step in _TAGGED_BY_SOURCE else "type"
                child = {} if child is None else {tag: child}
                _set(node, step, child, item)
                owned.setdefault(here, item.arg)
            if not isinstance(child, (dict, list)) or (isinstance(child, list) and isinstance(nxt, str)):
                shown = ".".join(map(str, here))
                raise _error(item.arg, f"{shown} is {_kind(child)}; it has no '{nxt}'")
            node = child
        _set(node, item.path[-1], item.value, item)
        owned[item.path] = item.arg
    return owned


def _kind(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"the value {value!r}"


def _get(node: Any, step: str | int, item: Override, here: Path) -> Any:
    if isinstance(node, list):
        if not isinstance(step, int) or step >= len(node):
            shown = ".".join(map(str, here[:-1])) or "spec"
            raise _error(item.arg, f"{shown} is a list of {len(node)} items; no index {step}")
        return node[step]
    return node.get(str(step))


def _set(node: Any, step: str | int, value: Any, item: Override) -> None:
    if isinstance(node, list):
        if not isinstance(step, int) or step >= len(node):
            raise _error(item.arg, f"index {step} is out of range (the list has {len(node)} items)")
        node[step] = value
    else:
        node[str(step)] = value
