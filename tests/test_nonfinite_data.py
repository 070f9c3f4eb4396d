"""Training data holding NaN or inf is a clear error naming the sample, before training: in every
array format the tensors source reads, for inputs and for regression targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, write_spec

SPEC = """\
name: finite
input: [4]
layers:
  - {type: Linear, out_features: 2}
train:
  data: DATA
  loss: MSELoss
  batch_size: 8
  epochs: 1
  output_dir: OUT
"""


def _arrays(bad: str, value: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.normal(size=(40, 2)).astype(np.float32)
    (x if bad == "input" else y)[23, 1] = value
    return x, y


def _files(tmp_path: Path, fmt: str, x: np.ndarray, y: np.ndarray) -> str:
    if fmt == "npz":
        np.savez(tmp_path / "d.npz", x=x, y=y)
        return "{source: tensors, inputs: d.npz}"
    if fmt == "npy":
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)
        return "{source: tensors, inputs: x.npy, targets: y.npy}"
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    return "{source: tensors, inputs: d.pt}"


@pytest.mark.parametrize("fmt", ["npz", "npy", "pt"])
@pytest.mark.parametrize("bad", ["input", "target"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_samples_are_refused_naming_the_sample(
    tmp_path: Path, fmt: str, bad: str, value: float
) -> None:
    data = _files(tmp_path, fmt, *_arrays(bad, value))
    spec = write_spec(tmp_path, SPEC.replace("DATA", data))
    result = cli("train", str(spec))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{bad} sample 23 holds NaN or infinite values" in result.stderr
    assert f"{spec}:6:" in result.stderr  # at train.data
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_finite_data_trains(tmp_path: Path) -> None:
    x, y = _arrays("input", 0.5)
    spec = write_spec(tmp_path, SPEC.replace("DATA", _files(tmp_path, "npy", x, y)))
    assert cli("train", str(spec), "--quiet").returncode == 0
