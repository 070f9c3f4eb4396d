"""Fixtures and helpers shared by the tests; the hypothesis profile (derandomized) for all of them.

The suite runs under pytest-xdist (`-n auto --dist loadfile` in pyproject.toml): test files run
concurrently in separate worker processes, so a test writes only under its own tmp_path, never into
the repository or the working directory, and never binds a fixed port.

`cli` runs a command in this process, `process` in a fresh one (for what could block or crash).
`one_thread` is opt-in: a module that wants it says `pytestmark = pytest.mark.usefixtures("one_thread")`,
so the rest of the suite keeps torch's thread count. `write_spec` is imported by the modules that use it
(`from conftest import write_spec`; pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Under pytest-xdist (`-n auto` in pyproject.toml) the workers share the cores: each worker's torch, and
# every process it starts, gets cores // workers threads instead of one per core (N workers x N spinning
# OpenMP threads thrash). Set before torch is imported, so torch and its subprocesses both read it; a
# serial run keeps torch's default. An OMP_NUM_THREADS the user set wins.
# The width of the human output never depends on the terminal the tests were started from (nor on the
# COLUMNS=80/LINES=24 that xdist's workers inherit from the controller process): 120 columns (report.py's
# DEFAULT_WIDTH), unless a test sets COLUMNS itself.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cores() // _WORKERS)))

import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

MAX_AUTO_WORKERS = 8


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per usable core (2 on CI), at most MAX_AUTO_WORKERS: every worker imports
    torch (a few hundred MB), and few test files are heavy enough to keep more busy.
    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, still decides (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return max(1, min(_cores(), MAX_AUTO_WORKERS))


# The same examples on every machine and every run: CI must not turn red by chance.
settings.register_profile("torchspec", derandomize=True)
settings.load_profile("torchspec")


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Bitwise comparisons need the same thread count in and out of process; one thread also keeps
    # a busy 2-core machine from thrashing.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A small CNN that trains in about a second: 36 train / 12 validation samples, 3 steps an epoch.
TINY_CNN = """\
name: tiny_cnn
input: [1, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - Flatten
  - {type: Linear, out_features: 5}
train:
  data: {source: random, samples: 48, classes: 5, val_fraction: 0.25}
  batch_size: 12
  epochs: 2
  optimizer: {type: SGD, lr: 0.1}
  output_dir: OUT
"""


def write_spec(tmp_path: Path, text: str, name: str = "spec", out: str = "run", extra: str = "") -> Path:
    """Write `text` (then `extra`) to tmp_path/<name>.yaml, its OUT placeholder made tmp_path/<out>."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("OUT", str(tmp_path / out)) + extra)
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``torchspec ARGS`` in this process (``main``, as the console script runs it): exit code,
    stdout and stderr; an uncaught exception (a traceback) fails the calling test."""
    from torchspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def process(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m torchspec ARGS`` in a fresh process (timeout 120 s)."""
    command = [sys.executable, "-m", "torchspec", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# A small trained run for the artefact tests: BatchNorm (buffers, an int64 counter), AdamW and a
# scheduler, so its checkpoint holds every kind of state.
ARTEFACT_SPEC = """\
name: artefact
input: [6]
layers:
  - {name: hidden, type: Linear, out_features: 8}
  - {name: norm, type: BatchNorm1d}
  - ReLU
  - {type: Dropout, p: 0.25}
  - {name: head, type: Linear, out_features: 3}
train:
  data: {source: random, samples: 48, classes: 3}
  batch_size: 16
  epochs: 1
  optimizer: {type: AdamW, lr: 0.01}
  scheduler: {type: StepLR, step_size: 1}
  output_dir: OUT
"""


@pytest.fixture(scope="module")
def artefact_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artefacts")
    import numpy as np

    import torchspec

    torchspec.train(write_spec(root, ARTEFACT_SPEC), quiet=True)
    np.save(root / "x.npy", np.zeros((2, 6), np.float32))
    return root
