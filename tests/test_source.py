"""Tests for torchspec.source: positions, safety limits and located errors, on real files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchspec import scalars, source, source_yaml
from torchspec.errors import SpecError
from torchspec.source import MAX_BYTES, MAX_DEPTH, Document, Pos, load_document, parse_document

BLOCK = """\
name: tiny
input: [1, 28, 28]
layers:
  - type: Conv2d
    out_channels: 8
  - {type: Conv3d, out_channels: 64}
  -
  - 'quoted'
"""

FLOW_EXAMPLE = """\
name: x
input: [1, 2]
# the example from the design notes
layers:
  - {type: Conv3d, out_channels: 64}
"""

JSON_TEXT = """\
{
  "name": "tiny",
  "layers": [
    {"type": "Conv3d", "out_channels": 64},
    [1, 2.5e3, true, null]
  ]
}
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_of(text: str | bytes, fmt: source.Format = "yaml") -> tuple[int, int, str, tuple[str, ...]]:
    with pytest.raises(SpecError) as info:
        parse_document(text, "spec", fmt)
    (problem,) = info.value.problems
    assert problem.file == "spec"
    return problem.line, problem.col, problem.message, problem.hints


def load_error(path: Path) -> tuple[int, int, str]:
    with pytest.raises(SpecError) as info:
        load_document(path)
    (problem,) = info.value.problems
    assert problem.file == str(path)
    return problem.line, problem.col, problem.message


# ----------------------------------------------------------------------------- positions


def test_block_yaml_positions(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "spec.yaml", BLOCK))
    assert doc.file == str(tmp_path / "spec.yaml")
    assert doc.data == {
        "name": "tiny",
        "input": [1, 28, 28],
        "layers": [
            {"type": "Conv2d", "out_channels": 8},
            {"type": "Conv3d", "out_channels": 64},
            None,
            "quoted",
        ],
    }
    assert doc.value_pos[()] == Pos(1, 1)
    assert doc.key_pos[("name",)] == Pos(1, 1)
    assert doc.value_pos[("name",)] == Pos(1, 7)
    assert doc.value_pos[("input",)] == Pos(2, 8)
    assert doc.value_pos[("input", 2)] == Pos(2, 16)
    assert doc.value_pos[("layers",)] == Pos(4, 3)  # a block sequence starts at its first '-'
    assert doc.value_pos[("layers", 0)] == Pos(4, 5)
    assert doc.key_pos[("layers", 0, "out_channels")] == Pos(5, 5)
    assert doc.value_pos[("layers", 0, "out_channels")] == Pos(5, 19)
    assert doc.value_pos[("layers", 1)] == Pos(6, 5)
    assert doc.value_pos[("layers", 3)] == Pos(8, 5)
    assert doc.line_text(5) == "    out_channels: 8"


def test_flow_yaml_positions(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "spec.yml", FLOW_EXAMPLE))
    assert doc.line_text(5) == "  - {type: Conv3d, out_channels: 64}"
    assert doc.value_pos[("layers", 0)] == Pos(5, 5)
    assert doc.key_pos[("layers", 0, "type")] == Pos(5, 6)
    assert doc.value_pos[("layers", 0, "type")] == Pos(5, 12)
    assert doc.key_pos[("layers", 0, "out_channels")] == Pos(5, 20)
    assert doc.value_pos[("layers", 0, "out_channels")] == Pos(5, 34)
    assert doc.value_pos[("input", 1)] == Pos(2, 12)


def test_json_positions(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "spec.json", JSON_TEXT))
    assert doc.data == json.loads(JSON_TEXT)
    assert doc.value_pos[()] == Pos(1, 1)
    assert doc.key_pos[("name",)] == Pos(2, 3)
    assert doc.value_pos[("name",)] == Pos(2, 11)
    assert doc.value_pos[("layers",)] == Pos(3, 13)
    assert doc.value_pos[("layers", 0)] == Pos(4, 5)
    assert doc.key_pos[("layers", 0, "out_channels")] == Pos(4, 24)
    assert doc.value_pos[("layers", 0, "out_channels")] == Pos(4, 40)
    assert doc.value_pos[("layers", 1, 1)] == Pos(5, 9)
    assert doc.value_pos[("layers", 1, 3)] == Pos(5, 22)


def test_columns_count_characters_not_bytes() -> None:
    doc = parse_document("é: ü\nb: [ä, ö]\nc: 😀😀 x\n")
    assert doc.value_pos[("é",)] == Pos(1, 4)
    assert doc.value_pos[("b", 1)] == Pos(2, 8)
    jdoc = parse_document('{"é": "ü",\n "b": ["😀", 1]}', fmt="json")
    assert jdoc.value_pos[("é",)] == Pos(1, 7)
    assert jdoc.value_pos[("b", 1)] == Pos(2, 13)


def test_bom_is_skipped(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "spec.yaml", "\ufeffname: x\n".encode()))
    assert doc.data == {"name": "x"} and doc.value_pos[("name",)] == Pos(1, 7)
    jdoc = load_document(write(tmp_path, "spec.json", '\ufeff{"name": "x"}'.encode()))
    assert jdoc.data == {"name": "x"} and jdoc.value_pos[("name",)] == Pos(1, 10)


def test_pos_falls_back_to_the_nearest_known_ancestor() -> None:
    doc = parse_document(BLOCK)
    assert doc.pos(("layers", 0, "kernel_size")) == Pos(4, 5)  # missing field: its layer
    assert doc.pos(("layers", 0, "out_channels"), key=True) == Pos(5, 5)
    assert doc.pos(("layers", 0, "out_channels")) == Pos(5, 19)
    assert doc.pos(("layers", 0, "kernel_size"), key=True) == Pos(4, 5)
    assert doc.pos(("layers", 99, "x")) == Pos(4, 3)
    assert doc.pos(("nothing", "here")) == Pos(1, 1)
    assert Document("f", "", {}, {}, {}).pos(("a",)) == Pos(1, 1)


def test_problem_carries_the_source_line() -> None:
    doc = parse_document(BLOCK, "net.yaml")
    problem = doc.problem(("layers", 0, "out_channels"), "must be positive", ["try 8"], key=True)
    assert (problem.file, problem.line, problem.col) == ("net.yaml", 5, 5)
    assert problem.source_line == "    out_channels: 8"
    assert problem.hints == ("try 8",)
    text = problem.format()
    assert text.startswith("net.yaml:5:5: error: must be positive")
    assert "    5 |     out_channels: 8" in text and "hint: try 8" in text
    assert doc.line_text(0) is None and doc.line_text(99) is None


def test_aliases_are_expanded_as_independent_copies() -> None:
    doc = parse_document("base: &b {kernel_size: 3, pad: [1, 1]}\nother: *b\nname: &n net\ncopy: *n\n")
    assert doc.data["other"] == {"kernel_size": 3, "pad": [1, 1]}
    assert doc.data["copy"] == "net"
    doc.data["other"]["pad"].append(9)
    assert doc.data["base"]["pad"] == [1, 1]
    assert doc.value_pos[("other",)] == Pos(2, 8)  # the alias itself
    assert doc.pos(("other", "pad", 0)) == Pos(2, 8)  # inside an expansion: walks up to the alias


# ----------------------------------------------------------------------------- scalars


# Plain scalars read by the YAML 1.2 core schema (torchspec.scalars), the same in a spec file and
# in a --set value: numbers as YAML 1.2 and JSON read them, never YAML 1.1's silent changes.
YAML_1_2_SCALARS = [
    ("1", 1),
    ("-12", -12),
    ("+7", 7),
    ("010", 10),  # decimal in YAML 1.2 (YAML 1.1: octal 8)
    ("0755", 755),
    ("007", 7),
    ("0o17", 15),  # octal is written 0o
    ("0o10", 8),
    ("0x1F", 31),
    ("0xff", 255),
    ("1:30", "1:30"),  # text (YAML 1.1: 90, base 60)
    ("1:30:00", "1:30:00"),
    ("1_000", "1_000"),  # text (YAML 1.1: 1000)
    ("0b101", "0b101"),  # text (YAML 1.1: 5)
    ("9223372036854775807", 2**63 - 1),
    ("-9223372036854775807", -(2**63 - 1)),
    ("0000000000000000000000000000000000000042", 42),  # leading zeros are not digits of size
    ("1.5", 1.5),
    ("1.", 1.0),
    (".5", 0.5),
    ("1.0e+3", 1000.0),
    ("1e3", 1000.0),  # YAML 1.1: text
    ("1e-3", 0.001),
    ("-.5E1", -5.0),
    ("1e", "1e"),
    ("e5", "e5"),
    (".inf", float("inf")),
    ("-.Inf", float("-inf")),
    ("+.INF", float("inf")),
    ("true", True),
    ("True", True),
    ("FALSE", False),
    ("yes", "yes"),  # YAML 1.1: true
    ("Off", "Off"),  # YAML 1.1: false
    ("on", "on"),
    ("n", "n"),
    ("~", None),
    ("null", None),
    ("NULL", None),
    ("", None),
    ("2024-01-02", "2024-01-02"),  # timestamps stay text
    ("'123'", "123"),
    ('"true"', "true"),
    ("'010'", "010"),
    ("!!str 5", "5"),
    ("!!int '7'", 7),
    ("!!int 010", 10),
    ("!!float 1", 1.0),
    ("!!bool true", True),
    ("!!null ''", None),
    ("! 12", "12"),  # the non-specific tag makes a string
]


@pytest.mark.parametrize(("text", "value"), YAML_1_2_SCALARS)
def test_yaml_scalars_read_as_yaml_1_2_in_a_file(text: str, value: object) -> None:
    data = parse_document(f"v: {text}\n").data
    assert data["v"] == value and type(data["v"]) is type(value)
    if text:
        nested = parse_document(f"v: [{text}, {{k: {text}}}]\n").data["v"]  # flow context too
        assert nested == [value, {"k": value}] and type(nested[0]) is type(value)


@pytest.mark.parametrize(("text", "value"), YAML_1_2_SCALARS)
def test_yaml_scalars_read_as_yaml_1_2_in_set(text: str, value: object) -> None:
    from torchspec.training.overrides import parse_override

    got = parse_override(f"train.x={text}").value
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text",
    [t for t, v in YAML_1_2_SCALARS if isinstance(v, (int, float)) and not isinstance(v, bool)],
)
def test_yaml_numbers_match_json_where_json_has_them(text: str) -> None:
    """Every number JSON can write reads the same from YAML and from JSON."""
    try:
        expected = json.loads(text)
    except ValueError:
        return  # not JSON syntax (0x1F, .5, +7, 010, .inf...)
    assert parse_document(f"v: {text}\n").data["v"] == expected
    assert parse_document(f'{{"v": {text}}}', fmt="json").data["v"] == expected


def test_yaml_nan() -> None:
    value = parse_document("v: .nan\n").data["v"]
    assert value != value


@pytest.mark.parametrize(
    ("text", "col", "shown"),
    [
        ("9223372036854775808", 4, "9223372036854775808"),
        ("-9223372036854775808", 4, "-9223372036854775808"),
        ("0x8000000000000000", 4, "0x8000000000000000"),
        ("1" * 5000, 4, "11111111111111111111...1111111111 (5000 characters)"),
        ("-" + "9" * 5000, 4, "(5001 characters)"),
        ("0x" + "f" * 5000, 4, "(5002 characters)"),
        ("0o" + "7" * 100, 4, "(102 characters)"),
        ("[1, 99999999999999999999999]", 8, "99999999999999999999999"),
    ],
)
def test_yaml_integer_out_of_range(text: str, col: int, shown: str) -> None:
    line, column, message, _ = error_of(f"name: x\nv: {text}\n")
    assert (line, column) == (2, col)
    assert message.endswith("is out of range (int64)") and shown in message
    assert "Exceeds the limit" not in message


def test_json_integer_out_of_range() -> None:
    assert error_of('{"a":\n  9223372036854775808}', "json")[:3] == (
        2,
        3,
        "integer 9223372036854775808 is out of range (int64)",
    )
    line, col, message, _ = error_of('{"a": -' + "7" * 100_000 + "}", "json")
    assert (line, col) == (1, 7) and "out of range (int64)" in message
    assert parse_document('{"a": -9223372036854775807}', fmt="json").data == {"a": -(2**63 - 1)}


@pytest.mark.parametrize(
    ("text", "message"),
    [("v: !!int abc", "'abc' is not a valid !!int"), ("v: !!bool maybe", "'maybe' is not a valid !!bool")],
)
def test_yaml_explicit_tag_with_a_bad_value(text: str, message: str) -> None:
    assert error_of(text)[:3] == (1, 4, message)


# ----------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path: Path) -> None:
    line, col, message = load_error(tmp_path / "absent.yaml")
    assert (line, col) == (1, 1)
    assert message.startswith("cannot read the spec") and "No such file" in message


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert load_error(tmp_path / "dir.yaml") == (1, 1, "cannot read the spec: this is a directory")


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.yaml", "name: x\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read anything")
        line, col, message = load_error(path)
        assert (line, col) == (1, 1) and "Permission denied" in message
    finally:
        path.chmod(0o644)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "#" * (MAX_BYTES + 1))
    assert load_error(path) == (
        1,
        1,
        f"cannot read the spec: the file is {MAX_BYTES + 1} bytes; the limit is {MAX_BYTES}",
    )
    assert "the limit is" in error_of("#" * (MAX_BYTES + 1))[2]


@pytest.mark.parametrize("name", ["spec.txt", "spec", "spec.yaml.bak"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    line, col, message = load_error(write(tmp_path, name, "name: x\n"))
    assert (line, col) == (1, 1)
    assert message.startswith("unsupported extension") and message.endswith("use .yaml, .yml or .json")


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    assert load_document(write(tmp_path, "SPEC.YML", "name: x\n")).data == {"name": "x"}
    assert load_document(write(tmp_path, "SPEC.JSON", '{"name": "x"}')).fmt == "json"


@pytest.mark.parametrize("name", ["spec.yaml", "spec.json"])
def test_non_utf8_bytes(tmp_path: Path, name: str) -> None:
    content = b'{"name": "x",\n "layers": ["\xc3\xa9", "\xff"]}'
    with pytest.raises(SpecError) as info:
        load_document(write(tmp_path, name, content))
    (problem,) = info.value.problems
    assert (problem.line, problem.col) == (2, 19)
    assert problem.message == "the file is not UTF-8 (byte 0xff)"
    assert problem.hints == ("save the file as UTF-8",)
    assert problem.source_line is not None and problem.source_line.startswith(' "layers"')


# ----------------------------------------------------------------------------- document shape


@pytest.mark.parametrize(
    ("text", "fmt", "pos", "what"),
    [
        ("", "yaml", (1, 1), "the spec is empty"),
        ("# only a comment\n", "yaml", (1, 1), "the spec is empty"),
        ("---\n", "yaml", (2, 1), "the spec is empty"),
        ("\n\n- 1\n- 2\n", "yaml", (3, 1), "the spec is a list, not a mapping"),
        ("  hello\n", "yaml", (1, 3), "the spec is a string, not a mapping"),
        ("", "json", (1, 1), "the spec is empty"),
        ("\n  [1]", "json", (2, 3), "the spec is a list, not a mapping"),
        ("null", "json", (1, 1), "the spec is empty"),
        ("12", "json", (1, 1), "the spec is an integer, not a mapping"),
    ],
)
def test_spec_must_be_a_mapping(text: str, fmt: source.Format, pos: tuple[int, int], what: str) -> None:
    line, col, message, _ = error_of(text, fmt)
    assert (line, col) == pos
    assert message == f"{what}; a spec is a mapping with name, input and layers"


def test_multiple_yaml_documents() -> None:
    line, col, message, hints = error_of("name: a\n---\nname: b\n")
    assert (line, col) == (2, 1)
    assert "one YAML document" in message and hints == ("remove the second '---'",)
    assert error_of("--- {name: a}\n--- {name: b}\n")[:2] == (2, 1)


# ----------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "pos", "part"),
    [
        ("name: x\nlayers: [1, 2\n", (3, 1), "invalid YAML"),
        ("name: x\na: b: c\n", (2, 5), "mapping values are not allowed"),
        ("name: x\ninput:\n\t- 1\n", (3, 1), "cannot start any token"),
        ("name: 'open\n", (2, 1), "unexpected end of stream"),
        ("a: [}\n", (1, 5), "invalid YAML"),
        ("a: x\nb: \x07\n", (2, 4), "character U+0007 is not allowed"),
    ],
)
def test_yaml_syntax_errors(text: str, pos: tuple[int, int], part: str) -> None:
    line, col, message, _ = error_of(text)
    assert (line, col) == pos and part in message


def test_yaml_tab_hint() -> None:
    assert "indent with spaces, not tabs" in error_of("a:\n\tb: 1\n")[3]


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ('{"a": 1,\n "b": [1, 2,]}', (2, 12), "trailing comma before ']'"),
        ('{"a": 1,\n}', (1, 8), "trailing comma before '}'"),
        ('{"a": NaN}', (1, 7), "NaN and Infinity are not valid JSON numbers"),
        ('{"a": [-Infinity]}', (1, 8), "NaN and Infinity are not valid JSON numbers"),
        ("{'a': 1}", (1, 2), 'keys must be strings in double quotes, found "\'"'),
        ('{"a" 1}', (1, 6), "expected ':' after the key, found '1'"),
        ('{"a": 1 "b": 2}', (1, 9), "expected ',' or '}', found '\"'"),
        ('{"a": [1 2]}', (1, 10), "expected ',' or ']', found '2'"),
        ('{"a": 1}\n{"b": 2}', (2, 1), "unexpected '{' after the document"),
        ('{"a": tru}', (1, 7), "expected a value, found 't'"),
        ('{"a": 01}', (1, 8), "expected ',' or '}', found '1'"),
        ('{"a": \n', (2, 1), "expected a value, found end of file"),
        ('{"a": "b\n"}', (1, 9), "invalid string: invalid control character"),
        ('{"a": "\\q"}', (1, 8), "invalid string: invalid \\escape"),
        ('{"a": "open', (1, 7), "invalid string: unterminated string"),
        ('{"a": \u0661}', (1, 7), "expected a value, found '\u0661' (U+0661 ARABIC-INDIC DIGIT ONE)"),
    ],
)
def test_json_syntax_errors(text: str, pos: tuple[int, int], message: str) -> None:
    line, col, got, _ = error_of(text, "json")
    assert (line, col) == pos
    assert got == message


def test_json_error_source_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_document('{\n  "a": [1,]\n}', "s.json", "json")
    (problem,) = info.value.problems
    assert problem.source_line == '  "a": [1,]'
    assert "s.json:2:10: error: trailing comma" in str(info.value)


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ("name: a\nlayers: []\nname: b\n", (3, 1), "duplicate key 'name' (first at line 1)"),
        ("a: {x: 1,\n     x: 2}\n", (2, 6), "duplicate key 'x' (first at line 1)"),
        ("a: 1\n'a': 2\n", (2, 1), "duplicate key 'a' (first at line 1)"),
    ],
)
def test_yaml_duplicate_keys(text: str, pos: tuple[int, int], message: str) -> None:
    assert error_of(text)[:3] == (*pos, message)


def test_json_duplicate_keys() -> None:
    text = '{\n  "layers": [{"type": "A",\n               "type": "B"}]\n}'
    assert error_of(text, "json")[:3] == (3, 16, "duplicate key 'type' (first at line 2)")


@pytest.mark.parametrize(
    ("text", "pos", "message", "hints"),
    [
        ("name: x\n1: a\n", (2, 1), "keys must be strings, not integer", ("quote it: '1'",)),
        ("null: x\n", (1, 1), "keys must be strings, not null", ("quote it: 'null'",)),
        ("true: push\n", (1, 1), "keys must be strings, not boolean", ("quote it: 'true'",)),
        ("1.5: x\n", (1, 1), "keys must be strings, not number", ("quote it: '1.5'",)),
        ("[a]: b\n", (1, 1), "keys must be strings, not collections", ()),
        ("a: 1\n? {b: 2}\n: c\n", (2, 3), "keys must be strings, not collections", ()),
        ("x: &k 3\n*k : y\n", (2, 1), "keys must be strings, not integer", ()),
    ],
)
def test_non_string_keys(text: str, pos: tuple[int, int], message: str, hints: tuple[str, ...]) -> None:
    assert error_of(text) == (*pos, message, hints)


def test_aliased_and_quoted_keys_are_fine() -> None:
    assert parse_document("x: &k name\n*k : net\n'1': a\n").data == {"x": "name", "name": "net", "1": "a"}


def test_merge_keys_are_rejected() -> None:
    text = "base: &b {a: 1}\nlayer:\n  <<: *b\n  c: 2\n"
    line, col, message, hints = error_of(text)
    assert (line, col) == (3, 3)
    assert "merge keys ('<<') are not supported" in message and hints
    assert parse_document("a: '<<'\n'<<': b\n").data == {"a": "<<", "<<": "b"}


# ----------------------------------------------------------------------------- safety


def test_python_tags_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    text = f'name: x\nlayers: !!python/object/apply:os.system ["touch {marker}"]\n'
    path = write(tmp_path, "evil.yaml", text)
    with pytest.raises(SpecError) as info:
        load_document(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.col) == (2, 9)
    assert "tags are not allowed; a spec holds plain data" in problem.message
    assert "!!python/object/apply:os.system" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "pos", "tag"),
    [
        ("a: !!python/name:os.system x\n", (1, 4), "!!python/name:os.system"),
        ("a: !foo x\n", (1, 4), "!foo"),
        ("a: !!binary aGVsbG8=\n", (1, 4), "!!binary"),
        ("a: !!set {x, y}\n", (1, 4), "!!set"),
        ("a:\n  - !!seq {b: 1}\n", (2, 5), "!!seq"),
        ("!<tag:example.com,2000:app> {a: 1}\n", (1, 1), "tag:example.com,2000:app"),
        ("%TAG !! tag:evil.com,2000:\n---\na: !!int 1\n", (3, 4), "tag:evil.com,2000:int"),
    ],
)
def test_other_tags_are_rejected(text: str, pos: tuple[int, int], tag: str) -> None:
    line, col, message, _ = error_of(text)
    assert (line, col) == pos
    assert message == f"tags are not allowed; a spec holds plain data (found '{tag}')"


def test_standard_collection_tags_are_fine() -> None:
    assert parse_document("!!map {a: !!seq [1, !!str x]}").data == {"a": [1, "x"]}


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines[:levels]) + "\n"


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", billion_laughs())
    started = time.perf_counter()
    line, col, message = load_error(path)
    assert time.perf_counter() - started < 5  # generous; it takes milliseconds
    assert message == "document expands to more than 100000 nodes (alias bomb?)"
    assert (line, col) == (6, 8)  # the first *e in "f: &f [*e, ..."


def test_moderate_aliases_within_the_budget() -> None:
    data = parse_document(billion_laughs(4)).data
    assert len(data["d"]) == 9 and data["d"][8][8][8][8] == "lol"


def test_too_many_plain_nodes() -> None:
    text = "a: [" + ", ".join(["1"] * (source.MAX_NODES + 5)) + "]\n"
    # root, key and list are 3 nodes, so item 99997 (0-based) is node 100001
    assert error_of(text)[:3] == (1, 5 + 3 * 99_997, "document has more than 100000 nodes")
    jtext = '{"a": [' + ", ".join(["1"] * (source.MAX_NODES + 5)) + "]}"
    assert error_of(jtext, "json")[:3] == (1, 8 + 3 * 99_997, "document has more than 100000 nodes")


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ("a: *nope\n", (1, 4), "alias *nope is not defined before it"),
        ("a: &r [1, *r]\n", (1, 11), "alias *r is inside its own anchor"),
    ],
)
def test_bad_aliases(text: str, pos: tuple[int, int], message: str) -> None:
    assert error_of(text)[:3] == (*pos, message)


@pytest.mark.parametrize("prefix", ["a: ", ""])
def test_yaml_depth_100000(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # bounded work, counted rather than timed: reading stops at the depth limit, not at the end
    consumed = 0
    real_parse = yaml.parse

    def counting_parse(*args: object, **kwargs: object) -> object:
        nonlocal consumed
        for event in real_parse(*args, **kwargs):  # type: ignore[arg-type]
            consumed += 1
            yield event

    monkeypatch.setattr(source_yaml.yaml, "parse", counting_parse)
    line, col, message, _ = error_of(prefix + "[" * 100_000)
    assert 0 < consumed <= 2 * MAX_DEPTH  # a few framing events, then one per level
    assert message == f"nesting is deeper than {MAX_DEPTH} levels"
    # the mapping itself is level 1 when there is a prefix
    assert (line, col) == (1, len(prefix) + MAX_DEPTH + 1 - (1 if prefix else 0))


@pytest.mark.parametrize("prefix", ['{"a": ', ""])
def test_json_depth_100000(prefix: str) -> None:
    line, col, message, _ = error_of(prefix + "[" * 100_000, "json")
    assert message == f"nesting is deeper than {MAX_DEPTH} levels"
    assert (line, col) == (1, len(prefix) + MAX_DEPTH + 1 - (1 if prefix else 0))


def test_depth_limit_is_inclusive() -> None:
    deepest = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    value = parse_document(deepest).data["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []
    assert parse_document('{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}", fmt="json")
    too_deep = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert error_of(too_deep)[:2] == (1, 3 + MAX_DEPTH)


def test_depth_through_an_alias() -> None:
    nested = "[" * 40 + "]" * 40
    text = f"x: &deep {nested}\ny: {'[' * 30}*deep{']' * 30}\n"
    line, col, message, _ = error_of(text)
    assert (line, col) == (2, 34)
    assert message == f"nesting is deeper than {MAX_DEPTH} levels (via alias *deep)"


def test_pure_python_loader_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [BLOCK, FLOW_EXAMPLE, "a: &x {b: [1, 'é', {c: ~}]}\nd: *x\ne: |\n  text\n  more\nf: 0x1F\n"]
    fast = [parse_document(text) for text in texts]
    monkeypatch.setattr(source_yaml, "LOADER", yaml.SafeLoader)  # read at each build
    for text, expected in zip(texts, fast):
        slow = parse_document(text)
        assert (slow.data, slow.value_pos, slow.key_pos) == (
            expected.data,
            expected.value_pos,
            expected.key_pos,
        )
    assert error_of(billion_laughs())[:2] == (6, 8)
    assert error_of("a: " + "[" * 100_000)[:2] == (1, 3 + MAX_DEPTH)
    assert error_of("a: !!python/object/apply:os.system ['true']\n")[:2] == (1, 4)


# ----------------------------------------------------------------------------- properties

_YAML_1_1 = yaml.resolver.Resolver()
INT64 = st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
PRINTABLE = st.text(
    st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("éüßλ中😀\n"), max_size=20
).filter(
    # PyYAML's YAML 1.1 dumper leaves text plain that YAML 1.1 reads as text but YAML 1.2 (which
    # we read) as a number ("1e3", "0o17"): such strings cannot round-trip through its dumper
    lambda text: (
        scalars.resolve(text) == scalars.STR
        or _YAML_1_1.resolve(yaml.ScalarNode, text, (True, False)) != scalars.STR
    )
)


def nested(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    leaves = st.none() | st.booleans() | INT64 | FLOATS | text
    tree = st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
        max_leaves=25,
    )
    return st.dictionaries(text, tree, max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested(st.text(max_size=20)))
def test_json_round_trip(data: dict[str, object]) -> None:
    assert parse_document(json.dumps(data), fmt="json").data == data
    assert parse_document(json.dumps(data, indent=2, ensure_ascii=False), fmt="json").data == data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested(PRINTABLE))
def test_yaml_round_trip(data: dict[str, object]) -> None:
    assert parse_document(yaml.safe_dump(data), fmt="yaml").data == data
    assert parse_document(yaml.safe_dump(data, default_flow_style=True, allow_unicode=True)).data == data


def check_only_spec_errors(text: str | bytes, fmt: source.Format) -> None:
    try:
        doc = parse_document(text, "fuzz", fmt)
    except SpecError as exc:
        for problem in exc.problems:
            assert problem.file == "fuzz" and problem.line >= 1 and problem.col >= 1
            assert problem.message
    else:
        assert isinstance(doc.data, dict) and doc.value_pos[()].line >= 1


YAMLISH = st.lists(
    st.sampled_from([*"{}[],:&*!-?|>'\"#%@`~ \n\t.ab01xy<=", "!!str", "!!int", "---", "...", "&a", "*a"])
).map("".join)
JSONISH = st.lists(st.sampled_from([*'{}[],:" \n\t-+.eE0123a\\', "true", "null", "NaN", '"k"'])).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(YAMLISH, st.text(), st.binary()))
def test_yaml_fuzz_raises_only_spec_errors(text: str | bytes) -> None:
    check_only_spec_errors(text, "yaml")


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSONISH, st.text(), st.binary()))
def test_json_fuzz_raises_only_spec_errors(text: str | bytes) -> None:
    check_only_spec_errors(text, "json")


def test_plain_exponent_numbers_are_floats_as_in_yaml_1_2_and_json() -> None:
    """`lr: 1e-3` is a number to every user (and to JSON); YAML 1.1 alone reads it as a string."""
    data = parse_document("a: 1e-3\nb: 5E2\nc: -.5e1\nd: 1.0e+3\nq: '1e-3'\nr: \"2e3\"\ns: 1e\nt: e5\n").data
    assert data == {
        "a": 0.001, "b": 500.0, "c": -5.0, "d": 1000.0, "q": "1e-3", "r": "2e3", "s": "1e", "t": "e5",
    }  # fmt: skip
    assert all(isinstance(data[k], float) for k in "abcd")


def test_an_optimizer_lr_written_1e_minus_3_validates(tmp_path: Path) -> None:
    import torchspec

    spec = tmp_path / "lr.yaml"
    spec.write_text(
        "name: lr\ninput: [4]\nlayers: [{type: Linear, out_features: 2}, {type: Dropout, p: 1e-1}]\n"
        "train:\n  data: {source: random, samples: 8}\n  optimizer: {type: Adam, lr: 1e-3}\n"
    )
    loaded = torchspec.load_spec(spec)
    assert loaded.train is not None and loaded.train["optimizer"]["lr"] == 0.001


def test_yaml_indentation_errors_say_how_to_fix_them() -> None:
    text = "name: x\ninput: [1, 28, 28]\nlayers:\n  - type: Conv2d\n    out_channels: 8\n   kernel_size: 3\n"
    line, col, message, hints = error_of(text)
    assert (line, col) == (6, 4)
    assert message == "invalid YAML: did not find expected '-' indicator"
    assert hints[0] == "in the list that starts at line 4"
    assert hints[1].startswith("check the indentation on this line and the one before")
    _, _, message, hints = error_of("name: x\ninput: [4]\nlayers: [{type: Linear, out_features: 10}\n")
    assert hints == (
        "in the [...] list that starts at line 3",
        "close the list with ']' and separate items with commas",
    )
