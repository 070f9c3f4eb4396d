"""Output that cannot be written is an error: every command, run as a real process with stdout on a
full device (/dev/full), closed (`>&-`) or open read-only, exits 1 with one line on stderr saying so,
never a traceback and never exit 0 having printed nothing. A reader that leaves (`| head`) is not an
error (tests/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CNN, write_spec

import torchspec

SPEC = TINY_CNN
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec, its finished run (for eval and predict) and a batch to predict."""
    folder = tmp_path_factory.mktemp("stdout")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torchspec.train(write_spec(folder, SPEC), quiet=True)
    finally:
        torch.set_num_threads(threads)
    np.save(folder / "batch.npy", np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32))
    write_spec(folder, SPEC, name="again", out="again")  # for train: a folder of its own
    return folder


def _commands(folder: Path) -> dict[str, list[str]]:
    spec, run = str(folder / "spec.yaml"), folder / "run"
    return {
        "check": ["check", spec],
        "build": ["build", spec],
        "schema": ["schema"],
        "train": ["train", str(folder / "again.yaml"), "--quiet", "--overwrite"],
        "eval": ["eval", spec, "--checkpoint", str(run / "best.ckpt")],
        "predict": ["predict", str(run / "model.safetensors"), str(folder / "batch.npy")],
        "bench": ["bench", spec, "--device", "cpu", "--steps", "1", "--warmup", "0", "--batch", "2"],
    }


def _run(argv: list[str], mode: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torchspec", *argv]
    if mode == "closed":  # the shell's `>&-`
        return subprocess.run(
            command,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=cwd,
            timeout=300,
            preexec_fn=lambda: os.close(1),
        )
    target = "/dev/full" if mode == "full" else os.devnull
    with open(target, "w" if mode == "full" else "r") as out:  # read-only: the shell's `1<FILE`
        return subprocess.run(
            command, stdout=out, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd, timeout=300
        )


EXPECTED = {
    "full": "torchspec: error: cannot write to stdout: disk full",
    "closed": "torchspec: error: stdout is closed, so nothing could be printed",
    "read-only": "torchspec: error: cannot write to stdout: not open for writing",
}
COMMANDS = ["check", "build", "schema", "train", "eval", "predict", "bench"]
CASES = [(c, m) for c in COMMANDS for m in ("full", "closed")] + [
    (c, "read-only") for c in ("check", "predict")
]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(("command", "mode"), CASES)
def test_unwritable_stdout_is_exit_1_with_one_line(made: Path, command: str, mode: str) -> None:
    done = _run(_commands(made)[command], mode, made)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("torchspec: error:")]
    assert len(lines) == 1 and lines[0].startswith(EXPECTED[mode]), done.stderr


def test_the_same_commands_print_when_stdout_works(made: Path) -> None:
    """The counterpart: with a working stdout each command prints and exits 0 (so exit 1 above is
    the stdout's doing, not the command's)."""
    for name in ("check", "schema", "predict"):
        done = subprocess.run(
            [sys.executable, "-m", "torchspec", *_commands(made)[name]],
            capture_output=True,
            text=True,
            env=ENV,
            cwd=made,
            timeout=300,
        )
        assert done.returncode == 0 and done.stdout.strip(), (name, done.stderr)


def test_a_failing_command_with_an_unwritable_stderr_still_exits_1(made: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "torchspec", "check", str(made / "missing.yaml")],
            stdout=subprocess.DEVNULL,
            stderr=full,
            env=ENV,
            timeout=300,
        )
    assert done.returncode == 1
