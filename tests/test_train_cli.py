"""`torchspec train` end to end: outputs, metrics.csv, the resolved spec, the default spec file, and
the quality bar of specs/digits_cnn.yaml."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import torchspec
from torchspec.spec import load_spec

ROOT = Path(__file__).parent.parent
SPEC = """\
name: cli_run
input: [1, 4, 8, 8]
layers:
  - {type: Conv3d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - {type: AdaptiveAvgPool3d, output_size: 1}
  - Flatten
  - {type: Linear, out_features: 4}
train:
  data: {source: synthetic-motion, samples: 64}
  batch_size: 16
  epochs: 3
  optimizer: {type: SGD, lr: 0.05, momentum: 0.9}
  scheduler: {type: OneCycleLR, max_lr: 0.1}
  warmup_steps: 2
  output_dir: OUT
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_train_writes_every_output(tmp_path: Path) -> None:
    (tmp_path / "torchspec.yaml").write_text(SPEC.replace("OUT", "runs/cli"))
    result = _cli(["train", "--set", "train.epochs=2"], tmp_path)  # SPEC defaults to ./torchspec.yaml
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "cli"
    assert {"metrics.csv", "spec.yaml", "last.ckpt", "best.ckpt", "model.safetensors"} <= set(os.listdir(out))
    rows = list(csv.reader((out / "metrics.csv").open()))
    assert rows[0] == [
        "epoch",
        "step",
        "lr",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",  # the task's other metrics: 4 classes, no top-5
        *[f"val_accuracy_class_{c}" for c in range(4)],
        "seconds",
    ]
    assert [r[0] for r in rows[1:]] == ["1", "2"] and rows[2][
        1
    ] == "8"  # 51 train samples: 4 batches of 16 per epoch
    assert "epoch 1/2 train loss" in result.stdout and "done: 2 epochs" in result.stdout
    # the resolved spec: overrides applied, inferred values written out, loadable again
    resolved = load_spec(out / "spec.yaml")
    assert resolved.train is not None and resolved.train["epochs"] == 2
    assert resolved.to_data()["layers"][0]["in_channels"] == 1
    model = torchspec.load_model(out / "model.safetensors")
    assert model(torch.zeros(2, 1, 4, 8, 8)).shape == (2, 4)


def test_no_spec_and_no_default_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli(["train"], tmp_path)
    assert result.returncode == 2
    assert "no SPEC given and no torchspec.yaml" in result.stderr


def test_bad_set_exits_1_before_touching_data(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SPEC.replace("OUT", "runs/cli"))
    result = _cli(["train", "s.yaml", "--set", "train.optimizer.lrr=0.1"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "--set train.optimizer.lrr=0.1: error: SGD (train.optimizer) has no parameter 'lrr'"
    )
    assert "did you mean 'lr'?" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_python_api_returns_history(tmp_path: Path) -> None:
    data = yaml.safe_load(SPEC.replace("OUT", str(tmp_path / "api")))
    history = torchspec.train(data, overrides=["train.epochs=1"], quiet=True)
    assert len(history) == 1 and set(history[0]) >= {"epoch", "train_loss", "val_accuracy", "lr"}


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs torchspec[digits]")
def test_digits_cnn_reaches_95_percent(tmp_path: Path) -> None:
    history = torchspec.train(
        ROOT / "specs" / "digits_cnn.yaml", [f"train.output_dir={tmp_path}"], quiet=True
    )
    assert history[-1]["val_accuracy"] >= 0.95


def test_quickstart_spec_reaches_90_percent(tmp_path: Path) -> None:
    """The README's main command trains specs/motion3d.yaml: it must really learn the motion."""
    history = torchspec.train(ROOT / "specs" / "motion3d.yaml", [f"train.output_dir={tmp_path}"], quiet=True)
    assert history[-1]["val_accuracy"] >= 0.90
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "metrics.csv").exists()
