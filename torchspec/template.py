"""Expressions inside spec values: ``$name``, ``$(expr)`` and ``$$`` (a literal ``$``).

A string that is exactly one expression (``$width``, ``$(width * 2)``) becomes the expression's
value with its type (int, float, bool, string, list). In a longer string each expression is
interpolated as text (``stage$(index + 1)`` -> ``stage2``). A ``$`` followed by anything else
(``$5``) is kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from torchspec.expr import MAX_ITEMS, Expr, ExprError, evaluate, parse

__all__ = ["has_template", "mentions", "render", "split"]

_NAME = re.compile(r"[A-Za-z_]\w*")
Part = str | tuple[str, int]  # literal text, or (expression text, its offset in the string)


def has_template(text: str) -> bool:
    """Whether ``text`` holds ``$name``, ``$(`` or ``$$`` (cheap test before :func:`split`)."""
    if "$" not in text:
        return False
    try:
        return split(text) != [text]
    except ExprError:
        return True  # a broken one ('$(' not closed): expansion reports it at its place


def split(text: str) -> list[Part]:
    """``text`` cut into literal pieces and (expression, offset) pairs; ExprError if a ``$(`` is
    not closed."""
    parts: list[Part] = []
    literal, i = "", 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            literal += text[i:]
            break
        literal += text[i:j]
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            literal, i = literal + "$", j + 2
            continue
        name = _NAME.match(text, j + 1)
        if nxt == "{":  # Hydra's ${x}, which YAML flow mappings cannot hold unquoted anyway
            raise ExprError("'${' starts no expression", j, "write $name or $(expr); $$ is a literal $")
        if nxt == "(":
            end = _closing(text, j + 1)
            expr, at, i = text[j + 2 : end], j + 2, end + 1
        elif name:
            expr, at, i = name[0], j + 1, name.end()
        else:
            literal, i = literal + "$", j + 1
            continue
        if literal:
            parts.append(literal)
        parts.append((expr, at))
        literal = ""
    if literal or not parts:
        parts.append(literal)
    return parts


def mentions(text: str, variable: str) -> bool:
    """Whether an expression in ``text`` reads ``variable`` (``encoder_layer_$index`` reads
    ``index``); a broken expression mentions nothing (its evaluation reports it)."""
    try:
        parts = split(text)
    except ExprError:
        return False
    stack: list[Any] = []
    for part in parts:
        if isinstance(part, tuple):
            try:
                stack.append(_parsed(part[0]))
            except ExprError:
                continue
    while stack:
        item = stack.pop()
        if isinstance(item, Expr):
            if item.op == "name" and item.args[:1] == (variable,):
                return True
            stack.extend(item.args)
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
    return False


def _closing(text: str, start: int) -> int:
    depth = 0
    for k in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return k
    raise ExprError("'$(' is not closed", start - 1, "close it with ')' (on the same line)")


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def render(text: str, names: Mapping[str, Any]) -> Any:
    """The value of a template string; ``text`` itself when it holds no expression.

    ExprError offsets are in ``text``.
    """
    parts = split(text)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        expr, at = parts[0]
        return _at(expr, at, names)
    out = ""
    for part in parts:
        out += part if isinstance(part, str) else _text(_at(*part, names))
        if len(out) > MAX_ITEMS:
            raise ExprError(f"the string is longer than {MAX_ITEMS} characters", 0)
    return out


@lru_cache(maxsize=4096)
def _parsed(expr: str) -> Expr:
    """Parsed once per text: a block's expressions are evaluated at each of its uses."""
    return parse(expr)


def _at(expr: str, at: int, names: Mapping[str, Any]) -> Any:
    try:
        if not expr.strip():
            raise ExprError("empty expression", 0, "write $(...) with an expression inside")
        return evaluate(_parsed(expr), names)
    except ExprError as exc:
        exc.offset += at
        raise
