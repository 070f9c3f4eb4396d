"""Plain YAML scalars read by the YAML 1.2 core schema, the way JSON reads numbers.

PyYAML implements YAML 1.1, which silently changes values a user typed: ``010`` is 8 (octal),
``1:30`` is 90 (base 60), ``yes``/``no``/``on``/``off`` are booleans and ``1e-3`` is a string.
A spec reads them as YAML 1.2 does (and ``--set`` values too, through the same loader):

=================  ======================  =================================================
plain scalar       value                   rule
=================  ======================  =================================================
``10``, ``010``    int 10                  decimal ``[-+]?[0-9]+`` (leading zeros are decimal)
``0o17``           int 15                  octal (``0o``)
``0x1F``           int 31                  hexadecimal (``0x``)
``1.5``, ``1e-3``  float                   ``[-+]?(.d+|d+(.d*)?)([eE][-+]?d+)?``
``.inf`` ``.nan``  float                   also ``-.inf``, ``.Inf``, ``.NAN`` ...
``true`` ``false`` bool                    also ``True``/``TRUE``/``False``/``FALSE``; nothing else
``null`` ``~``     None                    also an empty value
anything else      str                     ``1:30``, ``1_000``, ``0b101``, ``yes``, ``2024-01-02``
=================  ======================  =================================================

Ints must fit int64 and floats must be finite unless written ``.inf``/``.nan``: an out-of-range
number is a located error, never a silent change (and never Python's int-string-limit ValueError).
"""

from __future__ import annotations

import math
import re

__all__ = ["BOOL", "FLOAT", "INT", "NULL", "STR", "TAGS", "OutOfRange", "matches", "resolve", "to_value"]

_STD = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_STD + t for t in ("str", "int", "float", "bool", "null"))
TAGS = (STR, INT, FLOAT, BOOL, NULL)
INT64_MAX = 2**63 - 1

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_ORDER = ((NULL, _NULL), (BOOL, _BOOL), (INT, _INT), (FLOAT, _FLOAT))
_DIGITS = 30  # a decimal int longer than this (after leading zeros) cannot fit int64


class OutOfRange(ValueError):
    """The scalar is a number that does not fit (int64, or a finite float64)."""


def resolve(text: str) -> str:
    """The core-schema tag of a plain (unquoted, untagged) scalar."""
    for tag, pattern in _ORDER:
        if pattern.match(text):
            return tag
    return STR


def matches(tag: str, text: str) -> bool:
    """Whether ``text`` is a valid scalar of ``tag`` (``!!float 1`` is valid: ints are floats)."""
    if tag == STR:
        return True
    pattern = dict(_ORDER)[tag]
    return bool(pattern.match(text)) or (tag == FLOAT and bool(_INT.match(text)))


def to_value(text: str, tag: str) -> object:
    """The Python value of a scalar already known to match ``tag``; raises :class:`OutOfRange`."""
    if tag == NULL:
        return None
    if tag == BOOL:
        return text.lower() == "true"
    if tag == STR:
        return text
    if tag == INT or (tag == FLOAT and _INT.match(text)):
        number = _int(text)
        return float(number) if tag == FLOAT else number
    lower = text.lower()
    if lower.endswith((".inf", ".nan")):
        return math.nan if lower == ".nan" else (-math.inf if lower.startswith("-") else math.inf)
    value = float(text)  # linear in the length; never raises for a matched pattern
    if math.isinf(value):
        raise OutOfRange(f"number {_short(text)} is out of range (float64); write .inf for infinity")
    return value


def _int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith(("0o", "0x")):  # int() is linear in power-of-two bases
        value = int(body[2:], 8 if body[1] == "o" else 16)
    elif len(body.lstrip("0")) > _DIGITS:  # never hand int() a huge decimal string
        value = INT64_MAX + 1
    else:
        value = int(body, 10)
    if value > INT64_MAX:
        raise OutOfRange(f"integer {_short(text)} is out of range (int64)")
    return sign * value


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"
