"""`torchspec bench`: a real subprocess on a tiny spec, JSON out; the library's numbers hang together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchspec.benchmark import benchmark
from torchspec.cli import main

SPEC = """\
name: tiny_bench
input: [3, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - Flatten
  - {type: Linear, out_features: 10}
"""
FIELDS = {
    "name", "device", "mode", "batch", "steps", "warmup", "precision", "channels_last", "compile",
    "samples_per_s", "step_ms_median", "step_ms_p90", "peak_memory_bytes", "peak_memory_kind",
    "macs_per_sample", "macs_factor", "macs_per_s", "params", "notes",
}  # fmt: skip


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def test_cli_json(spec: Path) -> None:
    command = [sys.executable, "-m", "torchspec", "bench", str(spec), "--steps", "3", "--warmup", "1"]
    command += ["--batch", "4", "--format", "json", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == FIELDS
    assert (result["name"], result["device"], result["mode"]) == ("tiny_bench", "cpu", "train")
    assert (result["batch"], result["steps"], result["warmup"]) == (4, 3, 1)
    assert result["samples_per_s"] > 0
    assert 0 < result["step_ms_median"] <= result["step_ms_p90"]
    assert result["peak_memory_bytes"] > 10 * 2**20  # a Python process with torch loaded
    # forward MACs per sample: conv 4*3*9 per pixel of 8x8, then 256 -> 10
    assert result["macs_per_sample"] == 4 * 3 * 9 * 64 + 256 * 10
    assert result["macs_factor"] == 3
    expected = result["macs_per_sample"] * 3 * result["samples_per_s"]
    assert result["macs_per_s"] == pytest.approx(expected, rel=1e-9)
    # samples/s is the batch over the mean step time: between the median's and the max's rates
    assert result["samples_per_s"] <= 4 / (result["step_ms_median"] / 1000) * 3


def test_cli_table_and_infer_mode(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(spec), "--steps", "2", "--warmup", "0", "--mode", "infer"]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "step time, p90" in out and "achieved MACs/s" in out
    assert "forward + backward" not in out  # infer: the forward MACs only


def test_train_section_speed_options_apply(tmp_path: Path) -> None:
    path = tmp_path / "bf16.yaml"
    path.write_text(SPEC + "train: {data: random, batch_size: 6, precision: bf16, channels_last: true}\n")
    result = benchmark(path, steps=2, warmup=1, device="cpu")
    assert (result.batch, result.precision, result.channels_last) == (6, "bf16", True)
    assert benchmark(path, steps=1, warmup=0, device="cpu", precision="fp32").precision == "fp32"


def test_an_option_that_cannot_apply_is_a_located_error(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mlp = spec.parent / "mlp.yaml"
    mlp.write_text("name: mlp\ninput: [4]\nlayers:\n  - {type: Linear, out_features: 2}\n"
                   "train:\n  data: random\n  channels_last: true\n")  # fmt: skip
    assert main(["bench", str(mlp), "--steps", "1"]) == 1
    assert f"{mlp}:7:18: error: channels_last: true needs a net of 2-d or of 3-d convolutions" in (
        capsys.readouterr().err
    )
