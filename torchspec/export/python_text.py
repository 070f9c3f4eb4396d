"""The text side of ``--to python``: expressions, and their layout as ``ruff format`` writes it.

Expressions are trees (:class:`Call`, :class:`Seq`, :class:`Raw`, :class:`Slot`, :class:`Use`) so
one layout rule serves every statement: on one line when it fits (88 columns); otherwise the
arguments on a line of their own, or, when that is too long too, one per line with a trailing
("magic") comma, which the formatter keeps. A :class:`Slot` is a value that may differ between the
uses of one generated class; the class resolution (:mod:`torchspec.export.python`) names it (a
constructor parameter, a shape symbol) or writes its value. :func:`signature` is an expression's
structure without its values: drafts with equal signatures share a class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torchspec.errors import SpecError

__all__ = [
    "INLINE",
    "Call",
    "Raw",
    "Seq",
    "Slot",
    "Use",
    "literal",
    "render_statement",
    "signature",
    "walk_slots",
]

INLINE = {"Add", "Mul", "Concat", "Mean", "Permute", "Reshape", "Chunk", "Split", "Select", "ExpandBatch"}
WIDTH = 88  # ruff format's default line length (the file is checked where no config applies)


@dataclass
class Raw:
    text: str


@dataclass
class Slot:
    """A value of one use: a constructor argument (``hint``: a parameter name) or a dimension of a
    shape comment (``dim``)."""

    value: Any
    hint: str
    dim: bool = False
    name: str | None = None  # set by the class resolution: the parameter (or symbol) it became


@dataclass
class Use:
    """An instance of a generated class: ``Bottleneck(64, 2)``; ``draft`` is the container's draft."""

    draft: Any
    args: list[Any] = field(default_factory=list)  # the class's parameters' values (Expr), resolved


@dataclass
class Call:
    func: str
    args: list[tuple[str | None, Any]]  # (keyword or None, Expr)


@dataclass
class Seq:
    """``nn.Sequential(a, b, ...)``, always one element per line, each with its shape comment."""

    func: str
    items: list[tuple[Any, list[Any] | None]]  # (Expr, comment tokens)


Resolver = Callable[[Slot], str]


def literal(value: Any, where: str) -> str:
    """A constructor argument as Python source (strings in double quotes, as ruff writes them)."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f'float("{value}")'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v, where) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    raise SpecError.single(
        where, f"cannot export {where} as Python: the value {value!r:.60} has no literal form"
    )


def tokens_text(tokens: list[Any], resolve: Resolver) -> str:
    return "".join(t if isinstance(t, str) else resolve(t) for t in tokens)


def flat(expr: Any, resolve: Resolver) -> str:
    """``expr`` on one line."""
    if isinstance(expr, Raw):
        return expr.text
    if isinstance(expr, Slot):
        return resolve(expr)
    if isinstance(expr, Use):
        return flat(Call(expr.draft.class_name, [(None, a) for a in expr.args]), resolve)
    if isinstance(expr, Call):
        parts = [(f"{k}=" if k else "") + flat(v, resolve) for k, v in expr.args]
        return f"{expr.func}({', '.join(parts)})"
    raise AssertionError(f"not an expression: {expr!r}")


def layout(expr: Any, indent: int, head: str, tail: str, resolve: Resolver) -> list[str]:
    """``head + expr + tail`` as lines at ``indent`` spaces, exploded where it does not fit."""
    pad = " " * indent
    if isinstance(expr, Seq):
        lines = [f"{pad}{head}{expr.func}("]
        for item, comment in expr.items:
            note = f"  # {tokens_text(comment, resolve)}" if comment else ""
            inner = layout(item, indent + 4, "", ",", resolve)
            if len(inner) == 1 and len(inner[0]) + len(note) <= WIDTH:
                lines.append(inner[0] + note)
            else:  # the comment goes above the element
                lines += ([f"{pad}    {note.strip()}"] if note else []) + inner
        return [*lines, f"{pad}){tail}"]
    nested = _has_seq(expr)  # an nn.Sequential inside: one element per line, whatever fits
    one = "" if nested else f"{pad}{head}{flat(expr, resolve)}{tail}"
    if not nested and (len(one) <= WIDTH or not isinstance(expr, (Call, Use)) or not _args(expr)):
        return [one]
    assert isinstance(expr, (Call, Use))
    func = expr.func if isinstance(expr, Call) else expr.draft.class_name
    lines = [f"{pad}{head}{func}("]
    joined = "" if nested else ", ".join((f"{k}=" if k else "") + flat(v, resolve) for k, v in _args(expr))
    if not nested and len(pad) + 4 + len(joined) <= WIDTH:  # the arguments on a line of their own
        return [*lines, f"{pad}    {joined}", f"{pad}){tail}"]
    for keyword, value in _args(expr):
        lines += layout(value, indent + 4, f"{keyword}=" if keyword else "", ",", resolve)
    return [*lines, f"{pad}){tail}"]


def _has_seq(expr: Any) -> bool:
    return isinstance(expr, Seq) or (isinstance(expr, Call) and any(_has_seq(v) for _, v in expr.args))


def _args(expr: Call | Use) -> list[tuple[str | None, Any]]:
    return expr.args if isinstance(expr, Call) else [(None, a) for a in expr.args]


def render_statement(
    indent: int, head: str, expr: Any, comment: list[Any] | None, resolve: Resolver
) -> list[str]:
    """``head + expr  # comment``; the comment moves above a statement it would make too long."""
    lines = layout(expr, indent, head, "", resolve)
    if not comment:
        return lines
    note = f"# {tokens_text(comment, resolve)}"
    if len(lines) == 1 and len(lines[0]) + 2 + len(note) <= WIDTH:
        return [f"{lines[0]}  {note}"]
    return [" " * indent + note, *lines]


def walk_slots(node: Any, out: list[Slot]) -> list[Slot]:
    if isinstance(node, Slot):
        out.append(node)
    elif isinstance(node, Use):
        for arg in node.args:
            walk_slots(arg, out)
    elif isinstance(node, Call):
        for _, value in node.args:
            walk_slots(value, out)
    elif isinstance(node, Seq):
        for item, comment in node.items:
            walk_slots(item, out)
            walk_slots(comment or [], out)
    elif isinstance(node, list):
        for item in node:
            walk_slots(item, out)
    return out


def signature(node: Any) -> str:
    """The structure of an expression with every value left out (drafts alike share a class)."""
    if isinstance(node, Slot):
        return "@d" if node.dim else "@a"
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, str):
        return node
    if isinstance(node, Use):
        return f"<{node.draft.key}>"
    if isinstance(node, Call):
        return node.func + "(" + ",".join(f"{k}={signature(v)}" for k, v in node.args) + ")"
    if isinstance(node, Seq):
        return node.func + "[" + ";".join(f"{signature(e)}#{signature(c or [])}" for e, c in node.items) + "]"
    if isinstance(node, list):
        return "".join(signature(n) for n in node)
    raise AssertionError(f"no signature for {node!r}")
