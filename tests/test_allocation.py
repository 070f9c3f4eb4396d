"""Allocation checks: build, bench and train compare the analytic size with the free memory first.

A run that cannot fit ends with "needs about X, Y available" and a hint (exit 1, no traceback),
before torch allocates anything; the estimate's parts are checked against real torch tensors so
the refusal is a lower bound that cannot be wrong.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchspec import infer_shapes
from torchspec.builder import build_from_report
from torchspec.memory import available_bytes, estimate, format_bytes, optimizer_slots

FREE = available_bytes("cpu")
needs_meminfo = pytest.mark.skipif(FREE is None, reason="no /proc/meminfo on this system")

TINY = """\
name: tiny
input: [3, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: BatchNorm2d}
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - Flatten
  - {type: Linear, out_features: 10}
train:
  data: {source: random, samples: 8}
  epochs: 1
  batch_size: 4
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("TORCHSPEC_NO_MEMORY_CHECK", None)
    command = [sys.executable, "-m", "torchspec", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def huge_linear(tmp_path: Path) -> Path:
    """A spec whose weights alone need about twice the free memory (Linear N -> N: 4*N*N bytes)."""
    assert FREE is not None
    n = math.isqrt(FREE // 2) + 1
    path = tmp_path / "huge.yaml"
    path.write_text(f"name: huge\ninput: [{n}]\nlayers:\n  - {{type: Linear, out_features: {n}}}\n")
    return path


def assert_refused(result: subprocess.CompletedProcess[str], what: str, hint: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "can't allocate" not in result.stderr
    assert what in result.stderr and "needs about" in result.stderr, result.stderr
    assert "available on cpu" in result.stderr and hint in result.stderr


@needs_meminfo
def test_build_refuses_a_model_larger_than_the_free_memory(tmp_path: Path) -> None:
    spec = huge_linear(tmp_path)
    result = run("build", str(spec), cwd=tmp_path)
    assert_refused(result, f"{spec}: error: building the model", "torchspec check")
    assert run("check", str(spec), cwd=tmp_path).returncode == 0  # check knows the size, allocates nothing


@needs_meminfo
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_bench_refuses_a_batch_larger_than_the_free_memory(tmp_path: Path, mode: str) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    result = run(
        "bench", "tiny.yaml", "--device", "cpu", "--batch", "1000000000", "--mode", mode, cwd=tmp_path
    )
    assert_refused(result, f"bench --mode {mode} with batch 1000000000", "smaller --batch")


@needs_meminfo
@pytest.mark.parametrize("how", ["--set", "file"])
def test_train_refuses_a_batch_larger_than_the_free_memory(tmp_path: Path, how: str) -> None:
    text = TINY if how == "--set" else TINY.replace("batch_size: 4", "batch_size: 1000000000")
    (tmp_path / "tiny.yaml").write_text(text)
    extra = ["--set", "train.batch_size=1000000000"] if how == "--set" else []
    result = run("train", "tiny.yaml", "--device", "cpu", *extra, cwd=tmp_path)
    assert_refused(result, "training with batch_size 1000000000", "train.batch_size")
    assert not (tmp_path / "runs").exists()  # refused before any output was written


# ------------------------------------------------------------------ the estimate against real torch

ZOO = Path(__file__).resolve().parent.parent / "specs"
SPECS = [ZOO / name for name in ("lenet5.yaml", "digits_cnn.yaml", "mlp.json", "conv_autoencoder.yaml")]


@pytest.mark.parametrize("spec", [TINY, *SPECS], ids=lambda s: getattr(s, "name", "tiny"))
def test_estimate_parts_are_what_torch_allocates(tmp_path: Path, spec: str | Path) -> None:
    """parameters == the state_dict's bytes; optimizer state == Adam's tensors after a step;
    activations == the outputs of the leaf modules for the batch; input == the batch's bytes."""
    if isinstance(spec, str):
        path = tmp_path / "tiny.yaml"
        path.write_text(spec)
        spec = path
    report = infer_shapes(spec, batch=2)
    parts = dict(estimate(report, "train", slots=optimizer_slots("Adam")).parts)
    model = build_from_report(report, seed=0)
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert parts["parameters"] == state
    trainable = sum(p.numel() * p.element_size() for p in model.parameters())
    outputs: list[int] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel() * 4)) for m in leaves]
    x = torch.randn(report.input)
    assert parts["input batch"] == x.numel() * x.element_size()
    optimizer = torch.optim.Adam(model.parameters())
    model(x).float().sum().backward()
    optimizer.step()
    for hook in hooks:
        hook.remove()
    assert parts["activations"] == sum(outputs)
    slots = sum(
        t.numel() * t.element_size() for s in optimizer.state.values() for k, t in s.items() if k != "step"
    )
    assert parts["optimizer state"] == slots == 2 * trainable
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    assert grads == parts["gradients"] == trainable  # buffers (BatchNorm statistics) have no gradient


@pytest.mark.parametrize(
    ("kind", "momentum", "slots"),
    [("SGD", 0.0, 0), ("SGD", 0.9, 1), ("Adam", 0.0, 2), ("AdamW", 0.0, 2), ("RMSprop", 0.0, 1)],
)
def test_optimizer_slots_match_torch(kind: str, momentum: float, slots: int) -> None:
    weight = torch.nn.Parameter(torch.ones(5))
    kwargs = {"momentum": momentum} if kind == "SGD" else {}
    optimizer = getattr(torch.optim, kind)([weight], lr=0.1, **kwargs)
    weight.grad = torch.ones(5)
    optimizer.step()
    held = [t for t in optimizer.state[weight].values() if isinstance(t, torch.Tensor) and t.numel() == 5]
    assert len(held) == slots == optimizer_slots(kind, momentum)


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (2048, "2.0 KB"), (3 * 2**30, "3.0 GB"), (2**41, "2.0 TB")],
)
def test_format_bytes(size: int, shown: str) -> None:
    assert format_bytes(size) == shown
