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
