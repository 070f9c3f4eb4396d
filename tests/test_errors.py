"""Every user mistake is a located error: ``FILE:LINE:COL: error: MESSAGE``, source line, caret, hints.

One test per class of mistake: the spec is written to a file, loaded with ``load_spec`` or
``infer_shapes``, and the test asserts where each problem is (line, column) and what it says. A few
run through ``python -m torchspec check`` too, and fuzz tests make sure that nothing but a
``SpecError`` ever comes out, whatever the input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchspec
from torchspec import Problem, SpecError

ROOT = Path(__file__).resolve().parents[1]
C3D = ROOT / "specs" / "c3d.yaml"

HEAD = "name: bad\ninput: [3, 8, 8, 8]\nlayers:\n"  # layers start on line 4


# -- helpers --------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | dict[str, Any], *, shapes: bool = True) -> list[Problem]:
    """The problems of a spec that must fail (``shapes``: also infer shapes)."""
    with pytest.raises(SpecError) as info:
        if shapes:
            torchspec.infer_shapes(path)
        else:
            torchspec.load_spec(path)
    found = info.value.problems
    assert found, "a SpecError carries at least one problem"
    return found


def one(path: Path | dict[str, Any], *, shapes: bool = True) -> Problem:
    found = problems(path, shapes=shapes)
    assert len(found) == 1, "\n".join(p.format() for p in found)
    return found[0]


def at(text: str, line: int, needle: str, nth: int = 1) -> tuple[int, int]:
    """(line, column) of the ``nth`` ``needle`` on 1-based ``line`` of ``text``: where a caret belongs."""
    row = text.splitlines()[line - 1]
    index = -1
    for _ in range(nth):
        index = row.index(needle, index + 1)
    return line, index + 1


def where(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.col


def check_format(problem: Problem, path: Path) -> None:
    """The compiler form: first line ``FILE:LINE:COL: error: ``, then source line and caret."""
    lines = problem.format().splitlines()
    assert lines[0].startswith(f"{path}:{problem.line}:{problem.col}: error: ")
    assert problem.source_line is not None
    gutter = f"{problem.line:>5} | "
    assert lines[1].startswith(gutter)
    caret = lines[2]
    assert caret.endswith("^") and caret.index("^") == len(gutter) + problem.col - 1


# -- the shape error of the issue, exactly ---------------------------------------------------------

SHAPE_SPEC = """\
name: bad
input: [1, 28, 28]
layers:
  - {type: Conv2d, out_channels: 16, kernel_size: 3, stride: 2}
  - Flatten
  - {type: Linear, in_features: 784, out_features: 10}
"""
SHAPE_LINE = (
    "bad.yaml:6:5: error: Linear (layers[2]): in_features is 784 but the incoming shape is "
    "[N, 2704] (after Flatten at layers[1]); set in_features: 2704 or leave it out"
)


def test_shape_error_is_exactly_the_documented_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, SHAPE_SPEC)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        torchspec.infer_shapes("bad.yaml")
    text = str(info.value)
    assert text.splitlines()[0] == SHAPE_LINE
    assert text.splitlines()[1:] == [
        "    6 |   - {type: Linear, in_features: 784, out_features: 10}",
        "      |     ^",
    ]


def test_shape_error_in_json_points_at_the_layer(tmp_path: Path) -> None:
    text = """\
{
  "name": "bad",
  "input": [1, 28, 28],
  "layers": [
    {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "stride": 2},
    "Flatten",
    {"type": "Linear", "in_features": 784, "out_features": 10}
  ]
}
"""
    problem = one(write(tmp_path, text, "bad.json"))
    assert where(problem) == (7, 5)
    assert problem.message == SHAPE_LINE.split(": error: ", 1)[1]


def test_block_style_shape_error_points_at_the_blamed_parameter(tmp_path: Path) -> None:
    text = "name: bad\ninput: [1, 28, 28]\nlayers:\n  - type: MaxPool2d\n    stride: 1\n    kernel_size: 30\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 6, "30")
    assert problem.message.startswith("MaxPool2d (layers[0]): the output would be empty")
    assert "kernel_size" in problem.message


# -- syntax and the safe loader ------------------------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = HEAD + "  - {type: ReLU]\n  - Tanh\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == at(text, 4, "]")
    assert problem.message.startswith("invalid YAML: ")
    assert "'}'" in problem.message
    check_format(problem, path)


def test_yaml_tabs_get_a_hint(tmp_path: Path) -> None:
    text = HEAD + "\t- ReLU\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 1)
    assert "indent with spaces, not tabs" in problem.hints


def test_json_syntax_error_trailing_comma(tmp_path: Path) -> None:
    text = '{\n  "name": "bad",\n  "input": [3, 8],\n  "layers": ["ReLU",]\n}\n'
    problem = one(write(tmp_path, text, "bad.json"))
    assert where(problem) == at(text, 4, ",]")
    assert problem.message == "trailing comma before ']'"
    assert problem.hints == ("JSON allows no comma after the last item",)


def test_yaml_11_boolean_word_is_text(tmp_path: Path) -> None:
    text = HEAD + "  - type: Conv3d\n    out_channels: 4\n    kernel_size: no\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == at(text, 6, "no")
    assert problem.message.startswith("Conv3d (layers[0]): kernel_size must be an int >= 1")
    assert problem.message.endswith("found string 'no'")
    check_format(problem, path)


def test_yaml_11_boolean_in_input(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, on]\nlayers: [ReLU]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 2, "on")
    assert "input[1] must be a positive int, found string 'on'" in problem.message


YAML_11_WORDS = [
    (w, fix)
    for words, fix in (("yes y on", "true"), ("no n off", "false"))
    for word in words.split()
    for w in (word, word.title(), word.upper())
]


@pytest.mark.parametrize(("word", "fix"), YAML_11_WORDS)
def test_yaml_11_boolean_words_for_a_boolean_get_the_fix(tmp_path: Path, word: str, fix: str) -> None:
    """YAML 1.2 has only true/false: a YAML 1.1 word where a boolean belongs gets the fix."""
    text = HEAD + f"  - {{type: Linear, out_features: 2, bias: {word}}}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, word + "}")
    assert problem.message.endswith(f"bias must be true or false, found string '{word}'")
    rule = "only true and false are booleans (torchspec reads YAML 1.2, not 1.1)"
    assert problem.hints == (f"{rule}: `bias: {fix}`",)


def test_huge_integer(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Linear, out_features: 99999999999999999999999999}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "9999")
    assert "out of range (int64)" in problem.message


def test_huge_integer_in_json(tmp_path: Path) -> None:
    text = '{"name": "bad", "input": [3, 1' + "0" * 40 + '], "layers": ["ReLU"]}'
    problem = one(write(tmp_path, text, "bad.json"))
    assert where(problem) == at(text, 1, "1000")
    assert "out of range (int64)" in problem.message


def test_huge_dimensions_overflow_int64(tmp_path: Path) -> None:
    text = "name: bad\ninput: [4611686018427387904, 4]\nlayers: [Flatten]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 3, "Flatten")
    assert "int64" in problem.message


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.yaml", HEAD + "  - {type: ReLU, type: Tanh}\n", "type: Tanh"),
        ("bad.json", '{"name": "a", "input": [3], "name": "b", "layers": ["ReLU"]}', '"name": "b"'),
    ],
)
def test_duplicate_key(tmp_path: Path, name: str, text: str, needle: str) -> None:
    problem = one(write(tmp_path, text, name))
    line = 4 if name.endswith(".yaml") else 1
    assert where(problem) == at(text, line, needle)
    assert re.fullmatch(r"duplicate key '(type|name)' \(first at line \d+\)", problem.message)


def test_python_tag_is_refused(tmp_path: Path) -> None:
    text = HEAD + "  - !!python/object/apply:os.system [echo pwned]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "!!python")
    assert "tags are not allowed" in problem.message
    assert "!!python/object/apply:os.system" in problem.message


def test_alias_bomb(tmp_path: Path) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcde", "bcdef"):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(rows) + "\n"
    start = time.perf_counter()
    problem = one(write(tmp_path, text))
    assert time.perf_counter() - start < 5
    assert "alias bomb" in problem.message
    assert problem.line in (5, 6) and text.splitlines()[problem.line - 1][problem.col - 1] == "*"


def test_deep_nesting(tmp_path: Path) -> None:
    text = "name: " + "[" * 100 + "]" * 100 + "\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (1, 7 + 63)  # the 64th bracket: the root mapping is level 1
    assert problem.message == "nesting is deeper than 64 levels"


def test_non_utf8(tmp_path: Path) -> None:
    text = b"name: bad\ninput: [3]\nlayers: [Re\xffLU]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (3, 12)
    assert problem.message == "the file is not UTF-8 (byte 0xff)"
    assert problem.hints == ("save the file as UTF-8",)


def test_file_too_large(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "  - ReLU\n" + "#" * 1_000_001 + "\n")
    problem = one(path)
    assert where(problem) == (1, 1)
    assert re.search(r"is \d+ bytes; the limit is 1000000", problem.message)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    problem = one(path)
    assert (problem.file, where(problem)) == (str(path), (1, 1))
    assert problem.message.startswith("cannot read")
    assert "No such file" in problem.message
    assert problem.format().startswith(f"{path}:1:1: error: cannot read")


def test_directory_is_not_a_spec(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.mkdir()
    problem = one(path)
    assert (problem.file, where(problem)) == (str(path), (1, 1))
    assert "is a directory" in problem.message


def test_unsupported_extension(tmp_path: Path) -> None:
    problem = one(write(tmp_path, HEAD + "  - ReLU\n", "bad.txt"))
    assert problem.message == "unsupported extension '.txt'; use .yaml, .yml or .json"


def test_empty_file(tmp_path: Path) -> None:
    problem = one(write(tmp_path, "# nothing here\n"))
    assert problem.message.startswith("the spec is empty")


# -- top-level schema ------------------------------------------------------------------------------


def test_unknown_top_level_key_with_suggestion(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 8]\nlayer:\n  - ReLU\n"
    path = write(tmp_path, text)
    problem = one(path, shapes=False)  # the misspelt `layers` is not also reported as missing
    assert where(problem) == (3, 1)
    assert problem.message == "unknown top-level key 'layer'"
    assert problem.hints == ("did you mean 'layers'?",)
    check_format(problem, path)


def test_unknown_top_level_key_without_suggestion_lists_the_keys(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 8]\nlayers: [ReLU]\nzzz: 1\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 1)
    assert problem.hints == ("the top-level keys are: name, description, input, layers, train",)


def test_missing_top_level_keys(tmp_path: Path) -> None:
    text = "description: nothing else\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (1, 1)
    assert problem.message == "the spec is missing required top-level keys 'name', 'input' and 'layers'"
    assert "`layers:`" in problem.hints[0]


def test_empty_layers(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 8]\nlayers: []\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 3, "[]")
    assert problem.message == "layers is empty; a model needs at least one layer"
    assert "add at least one layer" in problem.hints[0]


def test_layers_must_be_a_list(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 8]\nlayers:\n  type: ReLU\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 3)
    assert problem.message == "layers must be a list of layers, found a mapping"
    assert "start each layer with `- `" in problem.hints[0]


def test_input_not_a_list_of_positive_ints(tmp_path: Path) -> None:
    text = 'name: bad\ninput: [3, 0, -1, "a"]\nlayers: [ReLU]\n'
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [at(text, 2, "0"), at(text, 2, "-1"), at(text, 2, '"a"')]
    assert found[0].message == "input[1] must be a positive int, found int 0"
    assert found[1].message == "input[2] must be a positive int, found int -1"
    assert found[2].message == "input[3] must be a positive int, found string 'a'"
    assert all("[3, 32, 32]" in p.hints[-1] for p in found)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "input must be a list of positive ints, found int 3"),
        ("[]", "input is empty; it needs at least one dimension"),
        ("[1, 1, 1, 1, 1, 1, 1, 1]", "input has 8 items; at most 7 are allowed"),
    ],
)
def test_input_shape_rules(tmp_path: Path, value: str, message: str) -> None:
    text = f"name: bad\ninput: {value}\nlayers: [ReLU]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (2, 8)
    assert problem.message == message


def test_name_rules(tmp_path: Path) -> None:
    text = "name: 5\ninput: [3]\nlayers: [ReLU]\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (1, 7)
    assert problem.message == "name must be a string, found int 5"
    assert problem.hints == ("quote it to make it a string: `name: '5'`",)


# -- layers ---------------------------------------------------------------------------------------


def test_unknown_layer_type_with_suggestion(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv4d, out_channels: 4, kernel_size: 3}\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == at(text, 4, "Conv4d")
    assert problem.message == "layers[0]: unknown layer type 'Conv4d'"
    assert problem.hints == ("did you mean 'Conv3d'?",)
    check_format(problem, path)


def test_wrong_case_bare_layer_name(tmp_path: Path) -> None:
    text = HEAD + "  - relu\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert problem.message == "layers[0]: unknown layer type 'relu'"
    assert problem.hints == ("names are case-sensitive: did you mean 'ReLU'?",)


def test_unknown_layer_type_without_suggestion(tmp_path: Path) -> None:
    problem = one(write(tmp_path, HEAD + "  - Frobnicate\n"))
    assert problem.message == "layers[0]: unknown layer type 'Frobnicate'"
    assert "torch.nn class names" in problem.hints[0]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_unknown_parameter_with_suggestion(tmp_path: Path, fmt: str) -> None:
    if fmt == "yaml":
        text = HEAD + "  - {type: Conv3d, out_channels: 4, kernal_size: 3}\n"
        line, needle = 4, "kernal_size"
    else:
        text = (
            '{\n  "name": "bad",\n  "input": [3, 8, 8, 8],\n  "layers": [\n'
            '    {"type": "Conv3d", "out_channels": 4, "kernal_size": 3}\n  ]\n}\n'
        )
        line, needle = 5, '"kernal_size"'
    path = write(tmp_path, text, f"bad.{fmt}")
    problem = one(path)  # and no "missing kernel_size": the typo is the one mistake
    assert where(problem) == at(text, line, needle)
    assert problem.message == "Conv3d (layers[0]) has no parameter 'kernal_size'"
    assert problem.hints == ("did you mean 'kernel_size'?",)
    check_format(problem, path)


def test_unknown_parameter_without_suggestion_lists_them(tmp_path: Path) -> None:
    text = HEAD + "  - {type: ReLU, speed: 3}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "speed")
    assert problem.hints == ("ReLU takes: name, from, inplace",)


def test_missing_required_parameter(tmp_path: Path) -> None:
    text = HEAD + "  - type: Conv3d\n    kernel_size: 3\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == (4, 5)  # the layer mapping
    assert problem.message == "Conv3d (layers[0]) is missing required parameter 'out_channels'"
    assert problem.hints == ("add `out_channels: ...` to this layer",)
    check_format(problem, path)


def test_missing_parameters_of_a_bare_name(tmp_path: Path) -> None:
    text = HEAD + "  - Conv3d\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert problem.message == (
        "Conv3d (layers[0]) is missing required parameters 'out_channels' and 'kernel_size'"
    )
    assert "`- {type: Conv3d, out_channels: ..., kernel_size: ...}`" in problem.hints[0]


def test_layer_without_type(tmp_path: Path) -> None:
    text = HEAD + "  - {out_features: 10}\n  - {tpye: ReLU}\n  - {type: 5}\n"
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [(4, 5), at(text, 5, "ReLU"), at(text, 6, "5")]
    assert found[0].message == "layers[0]: the layer has no 'type'"
    assert found[1].hints == ("did you mean 'type'?",)
    assert found[2].message == "layers[2]: type must be a layer type name, found int 5"


@pytest.mark.parametrize(
    ("item", "found"),
    [
        ("5", "int 5"),
        ("null", "null"),
        ("[ReLU]", "list ['ReLU']"),
        ("", "no value (an empty value is null)"),
    ],
)
def test_layer_item_that_is_not_a_layer(tmp_path: Path, item: str, found: str) -> None:
    text = HEAD + "  - ReLU\n  - " + item + "\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == ((5, 5) if item else (5, 4))
    assert problem.message == (
        f"layers[1] must be a layer (a type name or a mapping with 'type'), found {found}"
    )
    assert "`- ReLU`" in problem.hints[0]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_wrong_value_types(tmp_path: Path, fmt: str) -> None:
    layer = {"type": "Conv3d", "out_channels": "4", "kernel_size": 3.5, "bias": 1}
    if fmt == "yaml":
        text = HEAD + '  - {type: Conv3d, out_channels: "4", kernel_size: 3.5, bias: 1}\n'
        line = 4
    else:
        text = json.dumps({"name": "bad", "input": [3, 8, 8, 8], "layers": [layer]}) + "\n"
        line = 1
    found = problems(write(tmp_path, text, f"bad.{fmt}"))
    assert [where(p) for p in found] == [at(text, line, '"4"'), at(text, line, "3.5"), at(text, line, "1}")]
    assert found[0].message == "Conv3d (layers[0]): out_channels must be an int, found string '4'"
    number = "`out_channels: 4`" if fmt == "yaml" else '`"out_channels": 4`'
    assert found[0].hints == (f"remove the quotes to write a number: {number}",)
    assert found[1].message == (
        "Conv3d (layers[0]): kernel_size must be an int >= 1 or a list of 3 such ints, found float 3.5"
    )
    assert found[2].message == "Conv3d (layers[0]): bias must be true or false, found int 1"


def test_choice_with_suggestion(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, out_channels: 4, kernel_size: 3, padding_mode: zero}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "zero}")
    assert problem.message == (
        "Conv3d (layers[0]): padding_mode must be one of 'zeros', 'reflect', 'replicate' or "
        "'circular', found string 'zero'"
    )
    assert problem.hints == ("did you mean 'zeros'?",)


def test_out_of_range_values(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, out_channels: 4, kernel_size: 0}\n  - {type: Dropout, p: 1.5}\n"
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [at(text, 4, "0}"), at(text, 5, "1.5")]
    assert found[0].message == "Conv3d (layers[0]): kernel_size must be >= 1, found int 0"
    assert found[1].message == "Dropout (layers[1]): p must be between 0 and 1, found float 1.5"


def test_wrong_list_length_for_kernel_size(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, out_channels: 4, kernel_size: [3, 3]}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "[3, 3]")
    assert problem.message == (
        "Conv3d (layers[0]): kernel_size [3, 3] has 2 entries but Conv3d has 3 spatial dimensions (D, H, W)"
    )
    assert problem.hints == (
        "write one int for all 3 dimensions (e.g. `kernel_size: 3`) or a list of 3 ints",
    )


def test_groups_must_divide_channels(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, in_channels: 3, out_channels: 4, kernel_size: 3, groups: 2}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "2}")
    assert problem.message == (
        "Conv3d (layers[0]): groups=2 must divide in_channels=3; pick a divisor of both channel counts"
    )


def test_groups_must_divide_inferred_channels(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, out_channels: 4, kernel_size: 3, groups: 2}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert "groups=2 does not divide the 3 incoming channels of [N, 3, 8, 8, 8]" in problem.message


def test_padding_same_needs_stride_1(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Conv3d, out_channels: 4, kernel_size: 3, stride: 2, padding: same}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, "same")
    assert problem.message.startswith(
        "Conv3d (layers[0]): padding='same' is only supported with stride 1 (stride is 2)"
    )
    assert "use stride 1 or an explicit padding" in problem.message


def test_union_values_get_one_message(tmp_path: Path) -> None:
    text = (
        "name: bad\ninput: [3, 8, 8]\nlayers:\n"
        "  - {type: Upsample, size: [1, 2, 3, 4]}\n  - {type: Upsample, size: yes}\n"
    )
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [at(text, 4, "[1, 2"), at(text, 5, "yes")]
    assert found[0].message == "Upsample (layers[0]): size has 4 items; at most 3 are allowed"
    assert found[1].message == ("Upsample (layers[1]): size must be an int or a list, found string 'yes'")


def test_rule_of_a_whole_layer(tmp_path: Path) -> None:
    text = HEAD + "  - {type: Upsample}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert problem.message == "Upsample (layers[0]): needs exactly one of size and scale_factor"


def test_overflowing_output_is_a_located_error(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 8, 8]\nlayers:\n  - {type: Upsample, scale_factor: 1.0e+308}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert "Upsample (layers[0]): the output for [N, 3, 8, 8] (the spec's input) is too large" in (
        problem.message
    )


def test_rank_mismatch(tmp_path: Path) -> None:
    text = "name: bad\ninput: [1, 28, 28]\nlayers:\n  - {type: Conv3d, out_channels: 4, kernel_size: 3}\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == (4, 5)
    assert problem.message.startswith("Conv3d (layers[0]): expects (C, D, H, W) samples (rank 4), but")
    assert "[N, 1, 28, 28] (the spec's input)" in problem.message
    assert "without the batch dimension" in problem.hints[0]
    check_format(problem, path)


def test_dimension_collapses_to_zero(tmp_path: Path) -> None:
    text = "name: bad\ninput: [1, 28, 28]\nlayers:\n  - {type: MaxPool2d, kernel_size: 30}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert problem.message.startswith("MaxPool2d (layers[0]): the output would be empty")
    assert "use a smaller kernel_size" in problem.message


def test_explicit_num_features_mismatch(tmp_path: Path) -> None:
    text = "name: bad\ninput: [3, 28, 28]\nlayers:\n  - {type: BatchNorm2d, num_features: 4}\n"
    problem = one(write(tmp_path, text))
    assert where(problem) == (4, 5)
    assert problem.message == (
        "BatchNorm2d (layers[0]): num_features is 4 but the incoming shape is [N, 3, 28, 28] "
        "(the spec's input) with 3 channels; set num_features: 3 or leave it out"
    )


def test_duplicate_layer_names(tmp_path: Path) -> None:
    text = HEAD + "  - {name: a, type: ReLU}\n  - {name: b, type: ReLU}\n  - {name: a, type: Tanh}\n"
    path = write(tmp_path, text)
    problem = one(path)
    assert where(problem) == at(text, 6, "a,")
    assert problem.message == "duplicate layer name 'a': already used by layers[0] (line 4)"
    assert "distinct names" in problem.hints[0]
    check_format(problem, path)


def test_duplicate_names_are_reported_with_the_schema_errors(tmp_path: Path) -> None:
    text = HEAD + "  - {name: a, type: ReLU}\n  - {name: a, type: Dropout, p: 2}\n"
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [at(text, 5, "a,"), at(text, 5, "2}")]
    assert found[0].message.startswith("duplicate layer name 'a'")
    assert found[1].message == "Dropout (layers[1]): p must be between 0 and 1, found int 2"


def test_invalid_layer_name(tmp_path: Path) -> None:
    text = HEAD + '  - {name: "conv.1", type: ReLU}\n'
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 4, '"conv.1"')
    assert problem.message == "ReLU (layers[0]): layer name 'conv.1' is not a valid name"
    assert "Python identifier" in problem.hints[0]


def test_nested_sequential_errors(tmp_path: Path) -> None:
    text = (
        "name: bad\ninput: [3, 28, 28]\nlayers:\n"
        "  - type: Sequential\n"
        "    name: features\n"
        "    layers:\n"
        "      - ReLU\n"
        "      - {type: Conv2d, out_channels: 4, kernal_size: 3}\n"
        "      - Relu\n"
        "      - {type: Dropout, p: 2}\n"
        "      - {name: x, type: ReLU}\n"
        "      - {name: x, type: ReLU}\n"
    )
    found = problems(write(tmp_path, text))
    assert [where(p) for p in found] == [
        at(text, 8, "kernal_size"),
        at(text, 9, "Relu"),
        at(text, 10, "2}"),
        at(text, 12, "x,"),
    ]
    assert found[0].message == "Conv2d (layers[0].layers[1]) has no parameter 'kernal_size'"
    assert found[1].message == "layers[0].layers[2]: unknown layer type 'Relu'"
    assert found[2].message == "Dropout (layers[0].layers[3]): p must be between 0 and 1, found int 2"
    assert found[3].message == ("duplicate layer name 'x': already used by layers[0].layers[4] (line 11)")


def test_nested_sequential_shape_error(tmp_path: Path) -> None:
    text = (
        "name: bad\ninput: [3, 8, 8]\nlayers:\n  - type: Sequential\n    layers:\n"
        "      - Flatten\n      - {type: Linear, out_features: 4}\n"
        "      - {type: Conv2d, out_channels: 3, kernel_size: 3}\n"
    )
    problem = one(write(tmp_path, text))
    assert where(problem) == (8, 9)
    assert problem.message.startswith("Conv2d (layers[0].layers[2]): expects (C, H, W) samples (rank 3)")
    assert "(after Linear at layers[0].layers[1])" in problem.message


def test_several_errors_all_reported_in_file_order(tmp_path: Path) -> None:
    text = (
        "name: 5\n"
        "input: [3, 28, 28]\n"
        "extra: 1\n"
        "layers:\n"
        "  - {type: Conv2d, out_channels: 0, kernel_size: 3, bias: 1}\n"
        "  - {type: Dropuot, p: 0.5}\n"
        "  - {type: Dropout, p: 1.5}\n"
        "  - Linear\n"
    )
    path = write(tmp_path, text)
    found = problems(path)
    assert [where(p) for p in found] == [
        (1, 7),
        (3, 1),
        at(text, 5, "0,"),
        at(text, 5, "1}"),
        at(text, 6, "Dropuot"),
        at(text, 7, "1.5"),
        (8, 5),
    ]
    text_out = str(SpecError(found))
    assert text_out.count(": error: ") == 7
    assert [line.split(": error: ")[0] for line in text_out.splitlines() if ": error: " in line] == [
        f"{path}:{p.line}:{p.col}" for p in found
    ]


def test_errors_of_a_mapping_have_no_position() -> None:
    problem = one({"name": "bad", "input": [3], "layers": [{"type": "Dropout", "p": 2}]})
    assert (problem.file, problem.line, problem.col, problem.source_line) == ("<spec>", 0, 0, None)
    assert problem.format() == "<spec>: error: Dropout (layers[0]): p must be between 0 and 1, found int 2"


def test_long_source_lines_are_cut_around_the_caret(tmp_path: Path) -> None:
    layers = [{"type": "ReLU"}] * 40 + [{"type": "Dropout", "p": 2}]
    text = json.dumps({"name": "bad", "input": [3], "layers": layers})
    problem = one(write(tmp_path, text, "bad.json"))
    shown, caret = problem.format().splitlines()[1:3]
    assert len(shown) < 130 and "..." in shown
    assert shown[caret.index("^")] == "2"


# -- the command line -----------------------------------------------------------------------------


def run_check(tmp_path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "torchspec", "check", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize(
    ("text", "name", "first"),
    [
        (SHAPE_SPEC, "bad.yaml", SHAPE_LINE),
        (
            HEAD + "  - {type: Conv3d, out_channels: 4, kernal_size: 3}\n",
            "bad.yaml",
            "bad.yaml:4:37: error: ",
        ),
        (HEAD + "  - {type: ReLU]\n", "bad.yaml", "bad.yaml:4:16: error: invalid YAML"),
        (b"name: \xff\n", "bad.yaml", "bad.yaml:1:7: error: the file is not UTF-8"),
        ('{"name": "bad", "input": [3], "layers": [7]}', "bad.json", "bad.json:1:42: error: layers[0]"),
    ],
)
def test_cli_check_prints_located_errors(tmp_path: Path, text: str | bytes, name: str, first: str) -> None:
    write(tmp_path, text, name)
    result = run_check(tmp_path, name)
    assert result.returncode == 1
    assert result.stderr.startswith(first)
    assert re.match(rf"{re.escape(name)}:\d+:\d+: error: ", result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_check_reports_every_spec(tmp_path: Path) -> None:
    write(tmp_path, SHAPE_SPEC, "one.yaml")
    result = run_check(tmp_path, "one.yaml", "missing.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("one.yaml:6:5: error: ")
    assert "\nmissing.yaml:1:1: error: cannot read" in result.stderr
    assert "Traceback" not in result.stderr


# -- fuzzing: nothing but SpecError, never a hang ----------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=5000,  # ms per example: a hang or a blow-up fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
JUNK = [
    "{", "}", "[", "]", ":", "- ", "  ", "\t", "&a ", "*a", "!!str ", "!!python/name:os.system ",
    "no", "0", "-1", "1e400", ".inf", "~", "'", '"', "#", "type: ", "Conv4d", "layers:", ",",
    "99999999999999999999", "\x00", "\u00e9", "<<: *a", "---", "? ", "%YAML 1.1", "\ufeff",
    "{type: Sequential, layers: [ReLU]}", "kernel_size: [1, 2]", "stride: 0", "in_features: 3",
    "padding: same", "dilation: 100", "- {type: Upsample, scale_factor: 1e300}",
    "- {type: Unflatten, dim: 1, unflattened_size: [-1, 7]}", "- {type: Softmax, dim: 9}",
    "- {type: Flatten, start_dim: 3, end_dim: 1}", "- {name: conv1, type: Identity}",
]  # fmt: skip


def expect_spec_error_only(path: Path) -> None:
    start = time.perf_counter()
    try:
        torchspec.infer_shapes(path)
    except SpecError as err:
        assert err.problems
        text = str(err)
        assert re.match(r"[^\n]*: error: ", text)
        assert "Traceback" not in text
    assert time.perf_counter() - start < 5


@FUZZ
@given(text=st.text(max_size=400), ext=st.sampled_from(["yaml", "json"]))
def test_fuzz_random_text(tmp_path: Path, text: str, ext: str) -> None:
    path = tmp_path / f"fuzz.{ext}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    expect_spec_error_only(path)


@FUZZ
@given(raw=st.binary(max_size=400), ext=st.sampled_from(["yaml", "json"]))
def test_fuzz_random_bytes(tmp_path: Path, raw: bytes, ext: str) -> None:
    path = tmp_path / f"fuzz.{ext}"
    path.write_bytes(raw)
    expect_spec_error_only(path)


MUTATION = st.tuples(
    st.sampled_from(["delete", "duplicate", "number", "junk", "junk-line", "swap"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(
        [*JUNK, "0", "1", "2", "3", "7", "-1", "65", "4611686018427387904", "9223372036854775808"]
    ),
)


def mutate(lines: list[str], mutations: list[tuple[str, int, int, str]]) -> str:
    for op, i, j, junk in mutations:
        if not lines:
            lines = [junk + "\n"]
        i %= len(lines)
        row = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, row)
        elif op == "number":
            numbers = list(re.finditer(r"-?\d+", row))
            if numbers:
                m = numbers[j % len(numbers)]
                lines[i] = row[: m.start()] + junk + row[m.end() :]
        elif op == "junk":
            cut = j % (len(row) + 1)
            lines[i] = row[:cut] + junk + row[cut:]
        elif op == "junk-line":
            lines.insert(i, "  " + junk + "\n")
        else:
            k = j % len(lines)
            lines[i], lines[k] = lines[k], lines[i]
    return "".join(lines)


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=5))
def test_fuzz_mutated_c3d(tmp_path: Path, mutations: list[tuple[str, int, int, str]]) -> None:
    text = mutate(C3D.read_text(encoding="utf-8").splitlines(True), mutations)
    path = tmp_path / "c3d.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    expect_spec_error_only(path)


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=5))
def test_fuzz_mutated_c3d_as_json(tmp_path: Path, mutations: list[tuple[str, int, int, str]]) -> None:
    data = torchspec.load_spec(C3D).to_data()
    text = mutate(json.dumps(data, indent=1).splitlines(True), mutations)
    path = tmp_path / "c3d.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    expect_spec_error_only(path)


def _layer_strategy() -> Any:
    from torchspec.layers import REGISTRY

    values = st.one_of(
        st.integers(min_value=-3, max_value=70),
        st.sampled_from([2**31, 2**62, 2**63 - 1, 1.5, 0.0, 1e300, float("inf"), None, True, False]),
        st.sampled_from(["same", "valid", "zeros", "reflect", "circular", "bilinear", "x", ""]),
        st.lists(st.one_of(st.none(), st.integers(min_value=-1, max_value=9)), max_size=4),
    )

    @st.composite
    def layer(draw: Any) -> Any:
        name = draw(st.sampled_from(sorted(REGISTRY)))
        if name == "Sequential" or draw(st.integers(0, 9)) == 0:
            return name
        fields = [f for f in REGISTRY[name].model_fields if f not in ("type", "name", "layers")]
        chosen = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
        return {"type": name, **{f: draw(values) for f in chosen}}

    return layer()


@FUZZ
@given(
    shape=st.lists(st.sampled_from([1, 2, 3, 7, 16, 2**40]), min_size=1, max_size=5),
    layers=st.lists(_layer_strategy(), min_size=1, max_size=5),
    batch=st.sampled_from([1, 3, 2**62]),
)
def test_fuzz_random_layers(shape: list[int], layers: list[Any], batch: int) -> None:
    spec = {"name": "fuzz", "input": shape, "layers": layers}
    try:
        torchspec.infer_shapes(spec, batch=batch)
    except SpecError as err:
        assert err.problems and str(err)


def test_train_section_errors_come_with_the_layer_errors_in_file_order(tmp_path: Path) -> None:
    """`check` validates the train section too: one run shows the layer and the train mistakes."""
    text = (
        "name: t\ninput: [4]\nlayers:\n"
        "  - {type: Linear, out_features: 2, kernal_size: 3}\n"
        "train:\n  data: {source: random, samples: 10}\n  epochs: 0\n"
        "  optimizer: {type: Adma, lr: 0.1}\n"
    )
    found = problems(write(tmp_path, text), shapes=False)
    assert [where(p) for p in found] == [
        at(text, 4, "kernal_size"),
        at(text, 7, "0"),
        at(text, 8, "Adma"),
    ]
    assert "did you mean 'Adam'?" in found[2].hints
    proc = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count(": error: ") == 3


def test_a_forgotten_flatten_is_named_in_the_hint(tmp_path: Path) -> None:
    text = (
        "name: noflat\ninput: [1, 28, 28]\nlayers:\n"
        "  - {type: Conv2d, out_channels: 8, kernel_size: 3}\n"
        "  - ReLU\n"
        "  - {type: Linear, in_features: 5408, out_features: 10}\n"
    )
    problem = one(write(tmp_path, text))
    assert where(problem) == at(text, 6, "{")
    assert problem.message.endswith("set in_features: 26 or leave it out")
    assert problem.hints == (
        "5408 is the whole sample flattened: add `- Flatten` before this Linear, "
        "which acts on the last dimension only",
    )


@pytest.mark.parametrize("batch", [0, 2**63, True])
def test_a_batch_out_of_range_names_the_range(batch: int) -> None:
    with pytest.raises(SpecError) as info:
        torchspec.infer_shapes(C3D, batch=batch)
    assert info.value.problems[0].message.startswith("batch must be an int in [1, 2**63 - 1], found ")
