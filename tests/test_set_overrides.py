"""A mistake that a --set brought in is reported at the --set, not at a line of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchspec.errors import SpecError
from torchspec.infer import infer_shapes
from torchspec.training.resolve import resolve_spec

SPEC = """\
name: t
input: [16]
layers:
  - {type: Linear, out_features: 8}
  - ReLU
  - {type: Linear, out_features: 4}
train:
  data: {source: random, samples: 8}
"""


def test_a_shape_error_from_a_set_value_names_the_set(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(SPEC)
    spec, _ = resolve_spec(path, ["layers.2.in_features=7"])
    with pytest.raises(SpecError) as info:
        infer_shapes(spec)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.col) == ("--set layers.2.in_features=7", 0, 0)
    assert problem.message.startswith("Linear (layers[2]): in_features is 7 but the incoming shape")
    assert problem.format().startswith("--set layers.2.in_features=7: error: Linear (layers[2])")


def test_a_shape_error_in_the_file_still_points_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(SPEC.replace("out_features: 4}", "out_features: 4, in_features: 7}"))
    spec, _ = resolve_spec(path, ["train.epochs=2"])
    with pytest.raises(SpecError) as info:
        infer_shapes(spec)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.col) == (str(path), 6, 5)


# ------------------------------------------------- --set values: the spec loader's rules and limits

LAUGHS = "[" + ",".join(f"&{a} [{','.join(['*' + p] * 9 if p else ['1'] * 9)}]" for p, a in zip(
    ["", "a", "b", "c", "d", "e", "f"], "abcdefg")) + "]"  # fmt: skip
BAD_VALUES = [
    LAUGHS,  # a "billion laughs": 9**7 nodes from ~300 bytes
    "[" * 100 + "]" * 100,  # deeper than MAX_DEPTH
    "9" * 5000,  # Python's int-string limit must never be reached
    "-" + "1" * 5000,
    "0x" + "f" * 5000,
    "1" * 400 + ".5",  # overflows float64 to inf
    "1e999",
    "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=",
    "{a: 1, a: 2}",
    "{<<: {a: 1}}",
    "[*undefined]",
    "[1, 2",
    "x\x07y",
]


def _file_problem(value: str) -> str:
    from torchspec.source import parse_document

    with pytest.raises(SpecError) as info:
        parse_document(f"v: {value}\n", "spec.yaml")
    return info.value.problems[0].message


@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: v[:20])
def test_set_values_are_refused_as_the_same_value_in_a_file(value: str) -> None:
    """The rule: --set reads its VALUE with the file loader, so every refusal is the file's."""
    from torchspec.training.overrides import parse_override

    with pytest.raises(SpecError) as info:
        parse_override(f"train.epochs={value}")
    (problem,) = info.value.problems
    assert problem.file.startswith("--set train.epochs=") and problem.line == 0
    assert len(problem.file) < 120  # a long argument is shown cut, not 5000 characters
    expected = _file_problem(value).replace("invalid YAML", "the value is not valid YAML")
    assert problem.message.split(" (at character ")[0] == expected
    assert "Exceeds the limit" not in problem.message


@pytest.mark.parametrize("value", ["[1, 2", "{a: [1}", "a: b: c"])
def test_a_syntax_error_in_a_set_value_says_where_and_how_to_quote(value: str) -> None:
    from torchspec.training.overrides import parse_override

    with pytest.raises(SpecError) as info:
        parse_override(f"k={value}")
    (problem,) = info.value.problems
    assert problem.message.startswith("the value is not valid YAML")
    assert "(at character" in problem.message and any("quote" in h for h in problem.hints)
    assert not any("line" in h for h in problem.hints)  # a command line has no lines to point at


@pytest.mark.parametrize(
    ("command", "value"),
    [("train", "9" * 5000), ("train", LAUGHS), ("train", "1e999"), ("bench", "9" * 5000), ("eval", LAUGHS)],
    ids=["train-huge-int", "train-laughs", "train-huge-float", "bench-huge-int", "eval-laughs"],
)
def test_cli_set_values_end_as_located_errors(tmp_path: Path, command: str, value: str) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "t.yaml").write_text(SPEC)
    extra = ["--checkpoint", "none.ckpt"] if command == "eval" else []
    args = [sys.executable, "-m", "torchspec", command, "t.yaml", *extra, "--set", f"train.epochs={value}"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("--set train.epochs="), result.stderr
    assert "Traceback" not in result.stderr and "ValueError" not in result.stderr
    assert ("out of range" in result.stderr) or ("alias bomb" in result.stderr)
    assert len(result.stderr) < 1000
