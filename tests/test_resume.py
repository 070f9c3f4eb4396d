"""Exact resume: a real `python -m torchspec train` subprocess is killed (SIGKILL) or interrupted
(SIGINT) mid-epoch, resumed with --resume auto, and must end with weights bitwise identical to an
uninterrupted run."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_spec
from safetensors.torch import load_file

import torchspec
from torchspec.training.checkpoint import load_checkpoint

# Dropout exercises the RNG, Adam + StepLR the optimizer and scheduler state, shuffle the data order.
SPEC = """\
name: resumable
input: [1, 4, 12, 12]
layers:
  - {type: Conv3d, out_channels: 8, kernel_size: 3, padding: 1}
  - ReLU
  - {type: Dropout, p: 0.3}
  - {type: AdaptiveAvgPool3d, output_size: 1}
  - Flatten
  - {type: Linear, out_features: 4}
train:
  data: {source: synthetic-motion, samples: 240, classes: 4, val_fraction: 0.2}
  batch_size: 8
  shuffle: true
  num_workers: 0
  epochs: 3
  optimizer: {type: Adam, lr: 0.01}
  scheduler: {type: StepLR, step_size: 1, gamma: 0.7}
  checkpoint_every: 5
  seed: 3
  output_dir: OUT
"""

# The same run with a residual block wired with from: (a torch.fx GraphModule inside).
GRAPH_SPEC = SPEC.replace(
    "  - ReLU\n  - {type: Dropout, p: 0.3}\n",
    """\
  - ReLU
  - name: res
    type: Sequential
    layers:
      - {name: conv, type: Conv3d, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: bn, type: BatchNorm3d}
      - {type: Add, from: [bn, input]}
      - {type: Dropout, p: 0.3}
""",
)
assert GRAPH_SPEC != SPEC

pytestmark = pytest.mark.usefixtures("one_thread")


def _start(spec: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "torchspec", "train", str(spec), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _resume(spec: Path) -> subprocess.CompletedProcess[str]:
    """``torchspec train SPEC --resume auto`` in a fresh process, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "torchspec", "train", str(spec), "--resume", "auto"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended before writing {path}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout}s"
        time.sleep(0.005)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _reference(tmp_path: Path, text: str = SPEC) -> dict[str, torch.Tensor]:
    torchspec.train(write_spec(tmp_path, text, "reference", out="reference"), quiet=True)
    return _weights(tmp_path / "reference")


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"


@pytest.mark.parametrize("text", [SPEC, GRAPH_SPEC], ids=["sequential", "graph"])
def test_kill_9_mid_epoch_then_resume_is_bitwise_identical(tmp_path: Path, text: str) -> None:
    reference = _reference(tmp_path, text)
    spec = write_spec(tmp_path, text, "killed", out="killed")
    last = tmp_path / "killed" / "last.ckpt"
    proc = _start(spec)
    _wait_for(last, proc)
    assert proc.poll() is None  # still training: the kill really interrupts the run
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(str(last))  # the last checkpoint is readable whenever the kill landed
    assert (state["epoch"], state["step"]) < (3, 3 * 24)
    resumed = _resume(spec)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    _assert_identical(reference, _weights(tmp_path / "killed"))
    # metrics.csv of the resumed run has every epoch once (losses equal to the reference's)
    ref_rows = (tmp_path / "reference" / "metrics.csv").read_text().splitlines()
    rows = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    assert len(rows) == len(ref_rows) == 4
    strip = [lambda r: r.rsplit(",", 1)[0]]  # all but the seconds column
    assert [strip[0](r) for r in rows] == [strip[0](r) for r in ref_rows]


def test_ctrl_c_checkpoints_and_exits_130_then_resumes_exactly(tmp_path: Path) -> None:
    reference = _reference(tmp_path)
    spec = write_spec(tmp_path, SPEC, "interrupted", out="interrupted")
    proc = _start(spec)
    _wait_for(tmp_path / "interrupted" / "last.ckpt", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume auto" in err and "checkpoint written to" in err
    state = load_checkpoint(str(tmp_path / "interrupted" / "last.ckpt"))
    assert state["step"] < 3 * 24
    torchspec.train(spec, resume="auto", quiet=True)
    _assert_identical(reference, _weights(tmp_path / "interrupted"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_exits_143(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC, "terminated", out="terminated")
    proc = _start(spec)
    _wait_for(tmp_path / "terminated" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"torchspec train {spec} --resume auto" in err


def test_the_printed_resume_command_resumes_the_same_run(tmp_path: Path) -> None:
    """The interrupt line repeats the --set arguments: pasted as printed, it resumes this run."""
    reference = _reference(tmp_path)
    spec = write_spec(tmp_path, SPEC, "with_set", out="elsewhere")  # --set moves the output
    out = tmp_path / "set out"  # a space, so the command must quote it
    proc = _start(spec, "--set", f"train.output_dir={out}")
    _wait_for(out / "last.ckpt", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = next(x for x in err.splitlines() if x.startswith("resume with: "))
    command = shlex.split(line.removeprefix("resume with: "))
    assert command[:3] == ["torchspec", "train", str(spec)]
    assert command[3:] == ["--set", f"train.output_dir={out}", "--resume", "auto"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run(
        [sys.executable, "-m", "torchspec", *command[1:]], capture_output=True, text=True, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout + resumed.stderr
    _assert_identical(reference, _weights(out))
    assert not (tmp_path / "elsewhere").exists()
