"""The expression language (torchspec.expr, torchspec.template): values, errors at their offset,
bounds, and that it is closed (no Python eval, attributes or imports)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torchspec.expr import INT64, MAX_ITEMS, MAX_TEXT, ExprError, evaluate, make_divisible
from torchspec.template import render, split, uses_variable

ENV = {"width": 64, "depths": [3, 4, 6, 3], "stride": 2, "ratio": 0.25, "act": "ReLU", "deep": True}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("width", 64),
        ("width * 2", 128),
        ("width // 3", 21),
        ("width / 4", 16.0),
        ("width % 5", 4),
        ("2 ** 10", 1024),
        ("-2 ** 2", -4),
        ("2 ** -1", 0.5),
        ("(1 + 2) * 3", 9),
        ("1 + 2 * 3", 7),
        ("depths[1]", 4),
        ("depths[-1]", 3),
        ("depths[1] - 1", 3),
        ("[1, 2, 3][2]", 3),
        ("[width, width * 2]", [64, 128]),
        ("[1, 2,]", [1, 2]),
        ("[]", []),
        ("[1] + [2]", [1, 2]),
        ("[0] * 3", [0, 0, 0]),
        ("stride != 1", True),
        ("stride == 2 and not deep", False),
        ("stride == 1 or deep", True),
        ("1 < stride < 3", True),
        ("3 > stride > 2", False),
        ("1 if stride == 2 else 0", 1),
        ("1 if stride == 1 else 2 if deep else 3", 2),
        ("true", True),
        ("False", False),
        ("null", None),
        ("1.5e2", 150.0),
        ("min(3, 1, 2)", 1),
        ("max(depths)", 6),
        ("round(2.5)", 2),
        ("round(2.675, 2)", 2.67),
        ("ceil(2.1)", 3),
        ("floor(-2.1)", -3),
        ("abs(-3)", 3),
        ("int(7.9)", 7),
        ("float(3)", 3.0),
        ("len(depths)", 4),
        ("act", "ReLU"),
        ("act + '6'", "ReLU6"),
        ('"a" == "a"', True),
        ("make_divisible(width * ratio, 8)", 16),
        ("make_divisible(32 * 0.75, 8)", 24),
        ("make_divisible(10, 8, min_value=16)", 16),
        ("make_divisible(27, 8)", 32),  # 24 would be under 90% of 27
        ("9223372036854775807", INT64),
    ],
)
def test_values(text: str, value: object) -> None:
    result = evaluate(text, ENV)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("wdth * 2", 0, "unknown variable 'wdth'"),
        ("width +", 7, "expected a value"),
        ("width * (2 + 1", 14, "expected ')'"),
        ("depths[4]", 6, "out of range"),
        ("depths[1.0]", 6, "must be an int"),
        ("width[0]", 5, "only lists"),
        ("1 / 0", 2, "division by zero"),
        ("width // 0", 6, "division by zero"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("max()", 0, "at least 1"),
        ("ceil(1, 2)", 0, "takes 1 arguments"),
        ("true + 1", 5, "needs numbers"),
        ("1 if 2 else 3", 2, "needs true or false"),
        ("1 2", 2, "unexpected '2'"),
        ("width.real", 5, "unexpected character '.'"),
        ("__import__('os')", 0, "unknown function"),
        ("width @ 2", 6, "unexpected character '@'"),
        ("2 ** 10 ** 10", 2, "out of range"),
        ("9223372036854775807 + 1", 20, "out of range"),
        ("99999999999999999999", 0, "out of range"),
        ("1e400", 0, "out of range"),
        ("[0] * 100000", 4, "limit"),
        ("[[0] * 100] * 1000", 12, "limit"),
        ("'a' < 1", 6, "cannot compare"),
        ("make_divisible(3, 0)", 0, "divisor"),
    ],
)
def test_errors_point_at_their_offset(text: str, offset: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, ENV)
    assert words in info.value.message
    assert info.value.offset == offset


def test_unknown_variable_suggests() -> None:
    with pytest.raises(ExprError) as info:
        evaluate("widht", ENV)
    assert info.value.hint == "did you mean 'width'?"


def test_bounds_stop_big_work() -> None:
    with pytest.raises(ExprError, match="characters long"):
        evaluate("1 + " * MAX_TEXT + "1", {})
    with pytest.raises(ExprError, match="nests deeper"):
        evaluate("(" * 100 + "1" + ")" * 100, {})
    assert evaluate(f"[0] * {MAX_ITEMS}", {}) == [0] * MAX_ITEMS


@given(st.integers(-(2**40), 2**40), st.integers(0, 80))
def test_powers_are_exact_or_out_of_range(base: int, exp: int) -> None:
    try:
        got = evaluate(f"{base} ** {exp}", {}) if base >= 0 else evaluate(f"({base}) ** {exp}", {})
    except ExprError as exc:
        assert "out of range" in exc.message
        assert abs(base**exp) > INT64 or exp * max(abs(base).bit_length() - 1, 1) > 63
    else:
        assert got == base**exp and abs(got) <= INT64


@pytest.mark.parametrize(
    ("v", "d"), [(v, d) for v in (1, 3.5, 15, 16, 24, 27.2, 100, 333) for d in (1, 4, 8)]
)
def test_make_divisible_is_torchvisions(v: float, d: int) -> None:
    def reference(v: float, divisor: int, min_value: int | None = None) -> int:
        # torchvision.models._utils._make_divisible
        if min_value is None:
            min_value = divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * v:
            new_v += divisor
        return new_v

    assert make_divisible(v, d) == reference(v, d)
    assert evaluate(f"make_divisible({v}, {d})", {}) == reference(v, d)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$width", 64),
        ("$(width * 2)", 128),
        ("$(depths)", [3, 4, 6, 3]),
        ("$deep", True),
        ("$(ratio)", 0.25),
        ("stage$(1 + 1)", "stage2"),
        ("$act-$width", "ReLU-64"),
        ("cost: $$5", "cost: $5"),
        ("$5 and $ alone", "$5 and $ alone"),
        ("no dollar", "no dollar"),
        ("$(max(width, 2))", 64),
        ("flags $deep $(not deep)", "flags true false"),
    ],
)
def test_templates(text: str, value: object) -> None:
    result = render(text, ENV)
    assert result == value and type(result) is type(value)


def test_template_offsets_are_in_the_whole_string() -> None:
    with pytest.raises(ExprError) as info:
        render("abc $(width + wdth)", ENV)
    assert info.value.offset == len("abc $(width + ")
    with pytest.raises(ExprError) as info:
        render("x $(width", ENV)
    assert "not closed" in info.value.message and info.value.offset == 2
    assert split("a$$b") == ["a$b"]
    with pytest.raises(ExprError) as info:
        render("x ${width}", ENV)
    assert info.value.offset == 2 and "$name or $(expr)" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "uses"),
    [
        ("layer$(index + 1)", True),
        ("$index", True),
        ("b$(max(1, index))", True),  # inside a call's arguments
        ("b$(round(2.5, ndigits=index))", True),  # a keyword argument
        ("$('a' if depths[index] > 1 else 'b')", True),
        ("$(width)_$(-index)", True),  # the second of two expressions
        ("layer$(width + 1)", False),
        ("index", False),  # plain text, no expression
        ("$$index", False),  # a literal $
        ("$(indexes)", False),
        ("$('index')", False),  # a string, not a variable
        ("$(index", False),  # broken: evaluating it reports the mistake
    ],
)
def test_uses_variable_finds_the_name_anywhere_in_the_expressions(text: str, uses: bool) -> None:
    assert uses_variable(text, "index") is uses


def test_floats_stay_finite() -> None:
    with pytest.raises(ExprError):
        evaluate("1e300 * 1e300", {})
    assert math.isfinite(evaluate("1e300 * 10", {}))
