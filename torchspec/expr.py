"""Running the expression language of spec values (``$name``, ``$(expr)``): a closed grammar parsed
by :mod:`torchspec.expr_parse` (never Python ``eval``; no attributes, imports or user functions).

Values are ints, floats, bools, strings, lists and null. Functions: ``min``, ``max``, ``round``,
``ceil``, ``floor``, ``abs``, ``int``, ``float``, ``len``, ``make_divisible``. Everything is
bounded: the text, nesting and evaluation steps (:mod:`torchspec.expr_parse`), ints (int64),
list and string lengths (:data:`MAX_ITEMS`). Every failure is an :class:`ExprError` carrying its
offset in the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torchspec.expr_parse import (
    INT64,
    KEYWORDS,
    MAX_ITEMS,
    MAX_STEPS,
    MAX_TEXT,
    Expr,
    ExprError,
    parse,
)

__all__ = [
    "FUNCTIONS", "INT64", "KEYWORDS", "MAX_ITEMS", "MAX_TEXT", "Expr", "ExprError", "evaluate",
    "make_divisible", "parse", "size",
]  # fmt: skip


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list"}.get(type(value), "value")


def _checked(value: Any, at: int) -> Any:
    """Keep results within bounds: ints in int64, finite floats, short lists and strings."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and abs(value) > INT64:
        raise ExprError("the result is out of range (int64)", at)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"the result is not a finite number ({value})", at)
    if isinstance(value, (list, str)) and size(value, MAX_ITEMS) > MAX_ITEMS:
        raise ExprError(f"the result has more than {MAX_ITEMS} items; that is the limit", at)
    return value


def size(value: Any, limit: int) -> int:
    """Items in ``value``, nested lists counted in full (characters of a string); counting stops
    past ``limit``, so a list repeating one huge list costs no more than the limit."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list):
        return 1
    total = len(value)
    for item in value:
        if total > limit:
            break
        if isinstance(item, list):
            total += size(item, limit - total)
    return total


def _num(value: Any, at: int, what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"{what} needs numbers, found {_kind(value)} {_show(value)}", at)
    return value


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 40 else text[:30] + "..." + text[-6:]


def _power(base: Any, exp: Any, at: int) -> Any:
    base, exp = _num(base, at, "'**'"), _num(exp, at, "'**'")
    if isinstance(base, int) and isinstance(exp, int) and exp >= 0:
        if abs(base) > 1 and exp * max(abs(base).bit_length() - 1, 1) > 63:
            raise ExprError("the result is out of range (int64)", at)
        return base**exp
    try:
        return math.pow(base, exp)
    except (OverflowError, ValueError) as exc:
        raise ExprError(f"'**' failed: {exc}", at) from None


def _arith(op: str, a: Any, b: Any, at: int) -> Any:
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        if len(a) + len(b) > MAX_ITEMS:
            raise ExprError(f"the result has more than {MAX_ITEMS} items; that is the limit", at)
        return a + b
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return _checked(a + b, at)
    if op == "*" and isinstance(a, list) and isinstance(b, int) and not isinstance(b, bool):
        if size(a, MAX_ITEMS) * max(b, 0) > MAX_ITEMS:
            raise ExprError(f"the result has more than {MAX_ITEMS} items; that is the limit", at)
        return a * b
    x, y = _num(a, at, f"'{op}'"), _num(b, at, f"'{op}'")
    if op in ("/", "//", "%") and y == 0:
        raise ExprError("division by zero", at)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return x / y
    return x // y if op == "//" else x % y


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _truth(value: Any, at: int, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{what} needs true or false, found {_kind(value)} {_show(value)}", at)
    return value


class _Eval:
    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names, self.steps = names, 0

    def run(self, node: Expr) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ExprError(f"the expression takes more than {MAX_STEPS} steps", node.at)
        op, at, args = node.op, node.at, node.args
        if op == "num":
            return args[0]
        if op == "name":
            if args[0] not in self.names:
                raise ExprError(f"unknown variable '{args[0]}'", at, _known(args[0], self.names))
            return self.names[args[0]]
        if op == "list":
            return _checked([self.run(item) for item in args], at)
        if op == "if":
            return self.run(args[1] if _truth(self.run(args[0]), at, "'if'") else args[2])
        if op in ("and", "or"):
            left = _truth(self.run(args[0]), at, f"'{op}'")
            if left == (op == "or"):
                return left
            return _truth(self.run(args[1]), at, f"'{op}'")
        if op == "not":
            return not _truth(self.run(args[0]), at, "'not'")
        if op in ("neg", "pos"):
            value = _num(self.run(args[0]), at, "'-'" if op == "neg" else "'+'")
            return _checked(-value if op == "neg" else value, at)
        if op == "compare":
            return self.compare(args[0], args[1])
        if op == "index":
            return self.index(self.run(args[0]), self.run(args[1]), at)
        if op == "call":
            name, pos, kw = args
            values = [self.run(a) for a in pos]
            return _checked(_call(name, values, {k: self.run(v) for k, v in kw}, at), at)
        if op == "**":
            return _checked(_power(self.run(args[0]), self.run(args[1]), at), at)
        return _checked(_arith(op, self.run(args[0]), self.run(args[1]), at), at)

    def compare(self, ops: tuple[str, ...], parts: tuple[Expr, ...]) -> bool:
        left = self.run(parts[0])
        for op, part in zip(ops, parts[1:]):
            right = self.run(part)
            ordered = op not in ("==", "!=")
            if ordered and not (_orderable(left, right)):
                raise ExprError(f"cannot compare {_kind(left)} and {_kind(right)} with '{op}'", part.at)
            if not _COMPARE[op](left, right):
                return False
            left = right
        return True

    def index(self, seq: Any, key: Any, at: int) -> Any:
        if not isinstance(seq, (list, str)):
            raise ExprError(f"only lists can be indexed, found {_kind(seq)} {_show(seq)}", at)
        if isinstance(key, bool) or not isinstance(key, int):
            raise ExprError(f"a list index must be an int, found {_kind(key)} {_show(key)}", at)
        if not -len(seq) <= key < len(seq):
            raise ExprError(f"index {key} is out of range (the list has {len(seq)} items)", at)
        return seq[key]


def _orderable(a: Any, b: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return numbers or (type(a) is type(b) and isinstance(a, (str, list)))


def _known(name: str, names: Mapping[str, Any]) -> str | None:
    import difflib

    if name == "index" and name not in names:  # torchspec.blocks.REPEAT_INDEX, reserved: not a var
        return "'index' is the copy number, known only inside a layer with `repeat:`"
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.7)
    if close:
        return f"did you mean '{close[0]}'?"
    return ("known: " + ", ".join(sorted(names))) if names else "declare it under `vars:`"


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """MobileNet/EfficientNet channel rounding: a multiple of ``divisor``, at least ``min_value``
    (default ``divisor``), never below 90% of ``v``."""
    low = divisor if min_value is None else min_value
    new = max(low, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _call(name: str, args: list[Any], kwargs: dict[str, Any], at: int) -> Any:
    arity, keywords = _SIGNATURES[name]
    unknown = [k for k in kwargs if k not in keywords]
    if unknown:
        raise ExprError(f"{name}() has no argument '{unknown[0]}'", at)
    if not arity[0] <= len(args) + len(kwargs) <= arity[1]:
        want = str(arity[0]) if arity[0] == arity[1] else f"{arity[0]} to {arity[1]}"
        if arity[1] > 99:
            want = f"at least {arity[0]}"
        raise ExprError(f"{name}() takes {want} arguments, found {len(args) + len(kwargs)}", at)
    if name in ("min", "max"):
        items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        if not items:
            raise ExprError(f"{name}() of an empty list", at)
        if not all(_orderable(items[0], v) for v in items):
            raise ExprError(f"{name}() needs numbers, found {', '.join(_kind(v) for v in items)}", at)
        return min(items) if name == "min" else max(items)
    if name == "len":
        if not isinstance(args[0], (list, str)):
            raise ExprError(f"len() needs a list, found {_kind(args[0])}", at)
        return len(args[0])
    values = [_num(v, at, f"{name}()") for v in [*args, *kwargs.values()] if v is not None]
    try:
        if name == "make_divisible":
            if not isinstance(values[1], int) or values[1] < 1:
                raise ExprError(f"make_divisible() needs a divisor int >= 1, found {values[1]}", at)
            low = kwargs.get("min_value", args[2] if len(args) > 2 else None)
            low = None if low is None else int(low)
            return make_divisible(values[0], values[1], low)
        if name == "round":
            return round(values[0], int(values[1])) if len(values) > 1 else round(values[0])
        return FUNCTIONS[name](*values)
    except (OverflowError, ValueError) as exc:
        raise ExprError(f"{name}() failed: {exc}", at) from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "round": round,
    "ceil": math.ceil,
    "floor": math.floor,
    "abs": abs,
    "int": int,
    "float": float,
    "len": len,
    "make_divisible": make_divisible,
}
# name: ((min, max) arguments, keyword names)
_SIGNATURES: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {
    "min": ((1, 1000), ()),
    "max": ((1, 1000), ()),
    "round": ((1, 2), ("ndigits",)),
    "ceil": ((1, 1), ()),
    "floor": ((1, 1), ()),
    "abs": ((1, 1), ()),
    "int": ((1, 1), ()),
    "float": ((1, 1), ()),
    "len": ((1, 1), ()),
    "make_divisible": ((2, 3), ("min_value",)),
}


def evaluate(node: Expr | str, names: Mapping[str, Any]) -> Any:
    """The value of ``node`` (or of the text, parsed) with ``names`` as its variables."""
    if isinstance(node, str):
        node = parse(node)
    return _Eval(names).run(node)
