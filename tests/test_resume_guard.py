"""Resuming checks the checkpoint's training settings against the current ones: a changed optimizer,
learning rate, batch size, data or DDP world size is one clear error (exit 1, no traceback) naming
each key with its checkpoint and current value, while settings that don't affect exactness (epochs,
checkpoint_every, num_workers, ...) may change, so raising epochs continues the run exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_spec
from safetensors.torch import load_file

import torchspec
from torchspec.errors import SpecError
from torchspec.training.checkpoint import load_checkpoint, save_checkpoint

# 64 random samples, 13 held out: 51 to train on, 4 batches of 16 (the last one of 3).
SPEC = """\
name: guarded
input: [6]
layers:
  - {type: Linear, out_features: 8}
  - ReLU
  - {type: Dropout, p: 0.2}
  - {type: Linear, out_features: 3}
train:
  data: {source: random, samples: 64, classes: 3, val_fraction: 0.2}
  batch_size: 16
  shuffle: true
  num_workers: 0
  epochs: 1
  optimizer: {type: Adam, lr: 0.01}
  seed: 5
  output_dir: OUT
"""

HINT = "resume with the settings the run started with, or start a new run"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A finished one-epoch run: its spec file; its last.ckpt is in tmp_path/run/."""
    spec = write_spec(tmp_path, SPEC)
    torchspec.train(spec, quiet=True)
    assert (tmp_path / "run" / "last.ckpt").exists()
    return spec


def _refused(spec: Path, *overrides: str, resume: str = "auto") -> str:
    """The message of the SpecError a resume with ``overrides`` raises; the run's files are kept."""
    last, resolved = spec.parent / "run" / "last.ckpt", spec.parent / "run" / "spec.yaml"
    before = last.read_bytes(), resolved.read_bytes()
    with pytest.raises(SpecError) as info:
        torchspec.train(spec, overrides, resume=resume, quiet=True)
    assert (last.read_bytes(), resolved.read_bytes()) == before  # nothing trained or written
    message = str(info.value)
    assert HINT in message
    return message


def test_cli_resume_with_another_optimizer_exits_1_without_traceback(run: Path) -> None:
    ckpt = run.parent / "run" / "last.ckpt"
    args = ["train", str(run), "--set", "train.optimizer=SGD", "--resume", str(ckpt)]
    result = subprocess.run(
        [sys.executable, "-m", "torchspec", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "KeyError" not in result.stderr
    assert "train.optimizer: {type: Adam, lr: 0.01" in result.stderr
    assert "→ {type: SGD, lr: 0.001" in result.stderr
    assert HINT in result.stderr
    assert "done:" not in result.stderr


def test_resume_with_another_lr_is_refused(run: Path) -> None:
    message = _refused(run, "train.optimizer.lr=0.5")
    assert "train.optimizer.lr: 0.01 → 0.5" in message
    assert "train.optimizer.type" not in message  # same optimizer: only the changed argument


def test_resume_with_another_batch_size_is_refused(run: Path) -> None:
    # The mid-epoch position is batches x batch_size: another batch size would skip or repeat samples.
    for size in ("32", "8"):
        message = _refused(run, f"train.batch_size={size}", resume=str(run.parent / "run" / "last.ckpt"))
        assert f"train.batch_size: 16 → {size}" in message


def test_every_differing_key_is_listed(run: Path) -> None:
    message = _refused(
        run, "train.seed=6", "train.shuffle=false", "train.data.samples=80", "train.loss=NLLLoss"
    )
    assert "(4 differ, checkpoint → now)" in message
    for line in (
        "train.seed: 5 → 6",
        "train.shuffle: true → false",
        "train.data.samples: 64 → 80",
        "train.loss: {type: CrossEntropyLoss",
    ):
        assert line in message


def test_another_ddp_world_size_is_refused(run: Path) -> None:
    last = run.parent / "run" / "last.ckpt"
    state = load_checkpoint(str(last))
    assert state["world_size"] == 1
    state.pop("format")
    save_checkpoint(str(last), {**state, "world_size": 2})  # as written by a 2-process ddp run
    assert "world size (ddp processes): 2 → 1" in _refused(run)


def test_more_epochs_continue_the_run_exactly(tmp_path: Path, run: Path) -> None:
    # Settings that don't change what each step does may differ: epochs, checkpoint_every, workers.
    history = torchspec.train(
        run,
        ["train.epochs=3", "train.checkpoint_every=2", "train.num_workers=0"],
        resume="auto",
        quiet=True,
    )
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert load_checkpoint(str(tmp_path / "run" / "last.ckpt"))["epoch"] == 3
    # ... bit for bit as a run of 3 epochs from the start
    straight = write_spec(tmp_path, SPEC, "straight", out="straight")
    reference = torchspec.train(straight, ["train.epochs=3"], quiet=True)
    assert [row["train_loss"] for row in history] == [row["train_loss"] for row in reference]
    resumed, expected = (
        load_file(str(tmp_path / "run" / "model.safetensors")),
        load_file(str(tmp_path / "straight" / "model.safetensors")),
    )
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[key], expected[key]) for key in expected)
