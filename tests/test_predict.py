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


BN_SPEC = """\
name: normed
input: [4]
layers:
  - {type: Linear, out_features: 8}
  - BatchNorm1d
  - ReLU
  - {type: Linear, out_features: 3}
train:
  data: {source: random, samples: 64, classes: 3}
  batch_size: 16
  epochs: 1
  output_dir: OUT
"""


def test_eval_batchnorm_checkpoint_keeps_running_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchspec.training.inference as inference
    from torchspec.training.checkpoint import load_checkpoint

    path = write_spec(tmp_path, BN_SPEC)
    torchspec.train(path, quiet=True)
    last_val = float((tmp_path / "run" / "metrics.csv").read_text().splitlines()[-1].split(",")[5])
    saved = load_checkpoint(str(tmp_path / "run" / "last.ckpt"))["model"]
    seen: dict[str, torch.Tensor] = {}
    real = inference.evaluate

    def spy(model: torch.nn.Module, *args: object, **kwargs: object) -> object:
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inference, "evaluate", spy)
    result = inference.evaluate_checkpoint(path, str(tmp_path / "run" / "last.ckpt"), say=lambda _: None)
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(seen[key], saved[key]), key
    assert result["loss"] == pytest.approx(last_val, rel=1e-4)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args], capture_output=True, text=True, timeout=120
    )


def test_garbage_safetensors_is_a_clear_error(run: Path) -> None:
    bad = run / "bad.safetensors"
    bad.write_bytes(b"\x00garbage bytes, not a safetensors file" * 3)
    np.save(run / "x.npy", np.zeros((2, 4), np.float32))
    for args in (
        ("predict", str(bad), str(run / "x.npy")),
        ("eval", str(run / "spec.yaml"), "--checkpoint", str(bad)),
    ):
        result = _cli(*args)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert f"{bad}" in result.stderr and "error:" in result.stderr
    with pytest.raises(torchspec.SpecError, match=r"bad\.safetensors"):
        torchspec.load_model(bad)


def test_predict_bad_device_and_string_input_are_clear_errors(run: Path) -> None:
    np.save(run / "x.npy", np.zeros((2, 4), np.float32))
    result = _cli("predict", str(run / "run" / "model.safetensors"), str(run / "x.npy"), "--device", "foo")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'foo'" in result.stderr and "error:" in result.stderr
    np.save(run / "s.npy", np.array([["a", "b", "c", "d"]]))
    result = _cli("predict", str(run / "run" / "model.safetensors"), str(run / "s.npy"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "numbers" in result.stderr and "s.npy" in result.stderr


def test_eval_spec_mismatch_hints_for_eval_not_resume(run: Path) -> None:
    other = write_spec(run, SPEC.replace("out_features: 16", "out_features: 12"), name="other")
    result = _cli("eval", str(other), "--checkpoint", str(run / "run" / "last.ckpt"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the checkpoint does not match the spec" in result.stderr
    assert "pass a checkpoint written for this spec" in result.stderr
    assert "--resume" not in result.stderr
