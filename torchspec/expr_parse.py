"""Parsing the expression language of spec values (``$name``, ``$(expr)``); :mod:`torchspec.expr`
runs what this parses.

A closed grammar (never Python ``eval``; no attributes, imports or user functions), with Python's
precedence::

    expr    := or ['if' or 'else' expr]
    or      := and ('or' and)*          and := not ('and' not)*       not := 'not' not | compare
    compare := sum (('=='|'!='|'<'|'<='|'>'|'>=') sum)*                (chained, as in Python)
    sum     := term (('+'|'-') term)*    term := unary (('*'|'/'|'//'|'%') unary)*
    unary   := ('-'|'+') unary | power   power := postfix ['**' unary]
    postfix := atom ('[' expr ']')*
    atom    := INT | FLOAT | 'true' | 'false' | 'null' | STRING | NAME | NAME '(' args ')'
             | '(' expr ')' | '[' [expr (',' expr)* [',']] ']'

Values are ints, floats, bools, strings, lists and null. Functions: ``min``, ``max``, ``round``,
``ceil``, ``floor``, ``abs``, ``int``, ``float``, ``len``, ``make_divisible``. Everything is
bounded: the text (:data:`MAX_TEXT`), nesting, evaluation steps, ints (int64), list and string
lengths. Every failure is an :class:`ExprError` carrying its offset in the text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FUNCTION_NAMES", "INT64", "KEYWORDS", "MAX_ITEMS", "MAX_STEPS", "MAX_TEXT", "Expr", "ExprError",
    "parse",
]  # fmt: skip

MAX_TEXT = 2_000  # characters of one expression
MAX_DEPTH = 40  # nesting of brackets and operators
MAX_STEPS = 10_000  # nodes evaluated per expression (lists of lists multiply work)
MAX_ITEMS = 10_000  # elements of a list, characters of a string
INT64 = 2**63 - 1
KEYWORDS = frozenset({"and", "or", "not", "if", "else", "true", "false", "null", "True", "False", "None"})

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>()\[\],=]))"
)
FUNCTION_NAMES = frozenset(
    {"min", "max", "round", "ceil", "floor", "abs", "int", "float", "len", "make_divisible"}
)
_CONST = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}


class ExprError(Exception):
    """An expression failed to parse or evaluate; ``offset`` is where, in the expression text."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


@dataclass(frozen=True)
class Expr:
    """A parsed node: ``op`` ('num', 'name', 'list', 'call', a binary operator, ...), ``at`` its offset."""

    op: str
    at: int
    args: tuple[Any, ...] = ()


# -- parsing --------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i, self.depth = text, _tokenize(text), 0, 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> bool:
        if self.toks[self.i][1] == value and self.toks[self.i][0] in ("op", "name"):
            self.i += 1
            return True
        return False

    def expect(self, value: str, opener: int | None = None) -> None:
        if not self.take(value):
            kind, found, at = self.peek()
            shown = "the end of the expression" if kind == "end" else f"'{found}'"
            hint = (
                f"the bracket opened at column {opener + 1} of the expression" if opener is not None else None
            )
            raise ExprError(f"expected '{value}', found {shown}", at, hint)

    def nest(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"the expression nests deeper than {MAX_DEPTH} levels", at)

    def expr(self) -> Expr:
        self.nest(self.peek()[2])
        body = self.binary(0)
        if self.peek()[:2] == ("name", "if"):
            at = self.peek()[2]
            self.i += 1
            cond = self.binary(0)
            self.expect("else")
            body = Expr("if", at, (cond, body, self.expr()))
        self.depth -= 1
        return body

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("or",),
        ("and",),
        ("not",),
        ("==", "!=", "<", "<=", ">", ">="),
        ("+", "-"),
        ("*", "/", "//", "%"),
    )

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        if ops == ("not",):
            kind, value, at = self.peek()
            if (kind, value) == ("name", "not"):
                self.i += 1
                self.nest(at)
                node = Expr("not", at, (self.binary(level),))
                self.depth -= 1
                return node
            return self.binary(level + 1)
        left = self.binary(level + 1)
        if ops[0] == "==":  # comparisons chain: a < b < c
            parts, where = [left], []
            while self.peek()[1] in ops and self.peek()[0] == "op":
                where.append(self.peek())
                self.i += 1
                parts.append(self.binary(level + 1))
            if where:
                return Expr("compare", where[0][2], (tuple(w[1] for w in where), tuple(parts)))
            return left
        while self.peek()[1] in ops and self.peek()[0] in ("op", "name"):
            _, op, at = self.peek()
            self.i += 1
            left = Expr(op, at, (left, self.binary(level + 1)))
        return left

    def unary(self) -> Expr:
        kind, value, at = self.peek()
        if kind == "op" and value in ("-", "+"):
            self.i += 1
            self.nest(at)
            node = Expr("neg" if value == "-" else "pos", at, (self.unary(),))
            self.depth -= 1
            return node
        base = self.postfix()
        if self.peek()[:2] == ("op", "**"):
            at = self.peek()[2]
            self.i += 1
            self.nest(at)
            base = Expr("**", at, (base, self.unary()))
            self.depth -= 1
        return base

    def postfix(self) -> Expr:
        node = self.atom()
        while self.peek()[:2] == ("op", "["):
            at = self.peek()[2]
            self.i += 1
            index = self.expr()
            self.expect("]", at)
            node = Expr("index", at, (node, index))
        return node

    def atom(self) -> Expr:
        kind, value, at = self.peek()
        self.i += 1
        if kind == "num":
            return Expr("num", at, (_number(value, at),))
        if kind == "str":
            return Expr("num", at, (value[1:-1],))
        if kind == "name" and value in _CONST:
            return Expr("num", at, (_CONST[value],))
        if kind == "name" and value not in KEYWORDS:
            if self.peek()[:2] == ("op", "("):
                return self.call(value, at)
            return Expr("name", at, (value,))
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.expect(")", at)
            return inner
        if (kind, value) == ("op", "["):
            items: list[Expr] = []
            while not self.take("]"):
                if items:
                    self.expect(",", at)
                    if self.take("]"):
                        break
                items.append(self.expr())
            return Expr("list", at, tuple(items))
        shown = "the end of the expression" if kind == "end" else f"'{value}'"
        raise ExprError(f"expected a value, found {shown}", at)

    def call(self, name: str, at: int) -> Expr:
        if name not in FUNCTION_NAMES:
            hint = "functions: " + ", ".join(sorted(FUNCTION_NAMES))
            raise ExprError(f"unknown function '{name}'", at, hint)
        self.i += 1  # '('
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        while not self.take(")"):
            if args or kwargs:
                self.expect(",", at)
                if self.take(")"):
                    break
            kind, value, here = self.peek()
            if kind == "name" and self.toks[self.i + 1][1] == "=":
                self.i += 2
                kwargs.append((value, self.expr()))
            elif kwargs:
                raise ExprError("a positional argument after a keyword argument", here)
            else:
                args.append(self.expr())
        return Expr("call", at, (name, tuple(args), tuple(kwargs)))


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    toks: list[tuple[str, str, int]] = []
    i = 0
    while i < len(text):
        match = _TOKEN.match(text, i)
        if not match or match.end() == i:
            if text[i:].strip() == "":
                break
            j = len(text) - len(text[i:].lstrip())
            hint = "strings are quoted with ' or \"" if text[j] in "'\"" else None
            raise ExprError(f"unexpected character '{text[j]}'", j, hint)
        kind = match.lastgroup or "op"
        toks.append((kind, match[kind], match.start(kind)))
        i = match.end()
    toks.append(("end", "", len(text.rstrip())))
    return toks


def _number(text: str, at: int) -> int | float:
    if any(c in text for c in ".eE"):
        value = float(text)
        if math.isinf(value):
            raise ExprError(f"the number {text[:30]} is out of range", at)
        return value
    if len(text) > 19 or int(text) > INT64:
        raise ExprError(f"the integer {text[:30]} is out of range (int64)", at)
    return int(text)


def parse(text: str) -> Expr:
    """Parse one expression; raises :class:`ExprError` with the offset of the mistake."""
    if len(text) > MAX_TEXT:
        raise ExprError(f"the expression is {len(text)} characters long; the limit is {MAX_TEXT}", 0)
    parser = _Parser(text)
    node = parser.expr()
    kind, value, at = parser.peek()
    if kind != "end":
        raise ExprError(f"unexpected '{value}' after the expression", at)
    return node
