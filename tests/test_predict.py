"""`torchspec eval` and `torchspec predict` on a trained run, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_spec

import torchspec
from torchspec.cli import main

SPEC = """\
name: predictable
input: [4]
layers:
  - {type: Linear, out_features: 16}
  - ReLU
  - {type: Linear, out_features: 3}
train:
  data: {source: random, samples: 96, classes: 3}
  batch_size: 16
  epochs: 2
  output_dir: OUT
"""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    torchspec.train(write_spec(tmp_path, SPEC), quiet=True)
    return tmp_path


def test_eval_reports_validation_metrics_matching_training(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last_val = float((run / "run" / "metrics.csv").read_text().splitlines()[-1].split(",")[5])
    for checkpoint in ("last.ckpt", "model.safetensors"):
        code = main(
            [
                "eval",
                str(run / "spec.yaml"),
                "--checkpoint",
                str(run / "run" / checkpoint),
                "--format",
                "json",
            ]
        )
        assert code == 0
        result = json.loads(capsys.readouterr().out)
        assert result["split"] == "val" and result["samples"] == 19
        assert result["loss"] == pytest.approx(last_val, rel=1e-4)
        assert 0 <= result["accuracy"] <= 1


def test_predict_table_and_json_top_k(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.save(run / "batch.npy", batch)
    torch.save(torch.from_numpy(batch[0]), run / "one.pt")
    assert (
        main(
            [
                "predict",
                str(run / "run" / "model.safetensors"),
                str(run / "batch.npy"),
                "--format",
                "json",
                "--top",
                "2",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and all(len(r["top"]) == 2 for r in rows)
    model = torchspec.load_model(run / "run" / "model.safetensors").eval()
    with torch.no_grad():
        probs = model(torch.from_numpy(batch)).softmax(1)
    assert rows[0]["top"][0]["class"] == int(probs[0].argmax())
    assert rows[0]["top"][0]["probability"] == pytest.approx(float(probs[0].max()), rel=1e-5)
    assert main(["predict", str(run / "run" / "best.ckpt"), str(run / "one.pt")]) == 0
    table = capsys.readouterr().out
    assert "#1 class (p)" in table and "#3 class (p)" in table


def test_predict_wrong_input_shape_is_a_clear_error(run: Path) -> None:
    np.save(run / "bad.npy", np.zeros((2, 7), np.float32))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torchspec",
            "predict",
            str(run / "run" / "model.safetensors"),
            str(run / "bad.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "the input has shape [2, 7], but the model takes [4]" in result.stderr
