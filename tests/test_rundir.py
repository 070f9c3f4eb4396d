"""The run folder (train.output_dir): one run at a time (a lock held for the run's lifetime, stale
after kill -9), a fresh run never lands on a finished one (the error names --resume auto, another
output_dir and --overwrite), --overwrite leaves nothing of the old run, our stale temporaries are
removed at start and nothing else is. Real `python -m torchspec train` processes where processes
matter (two at once, kill -9), in-process torchspec.train where only the folder does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_CNN, write_spec

import torchspec
from torchspec.errors import SpecError
from torchspec.training.checkpoint import load_checkpoint, spec_of
from torchspec.training.rundir import LOCK_NAME, RECORD_FILES, RUN_FILES

pytestmark = pytest.mark.usefixtures("one_thread")

# 128 train samples, 8 a step: a run lasts long enough to be caught alive, and checkpoints often.
SPEC = (
    TINY_CNN.replace("samples: 48", "samples: 160")
    .replace("batch_size: 12", "batch_size: 8")
    .replace("epochs: 2", "epochs: 2\n  checkpoint_every: 4\n  seed: 1")
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(spec: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "torchspec", "train", str(spec), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _train(spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torchspec", "train", str(spec), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert proc.poll() is None, f"the run ended before writing {path}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout}s"
        time.sleep(0.01)


def _lr_of(checkpoint: Path) -> float:
    return float(spec_of(load_checkpoint(str(checkpoint)))["train"]["optimizer"]["lr"])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.is_symlink()}


def test_two_runs_on_one_folder_the_second_is_refused_naming_the_holder(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    first = _start(spec, "--set", "train.epochs=100000")  # runs until interrupted
    try:
        _wait_for(out / "last.ckpt", first)
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder["pid"] == first.pid and "train" in holder["command"]
        # a second run, however it starts, is refused before it touches anything
        for extra in ([], ["--resume", "auto"], ["--overwrite"]):
            second = _train(spec, "--set", "train.optimizer.lr=0.5", *extra)
            assert second.returncode == 1, (extra, second.stderr)
            busy = f"{out}: error: output_dir {out} is in use by another run: pid {first.pid}"
            assert busy in second.stderr
            assert "choose another output_dir" in second.stderr and "Traceback" not in second.stderr
            assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=180)
    assert first.returncode == 130, err
    # every file is the first run's: nothing of the refused runs (lr 0.5) is mixed in
    assert _lr_of(out / "last.ckpt") == _lr_of(out / "best.ckpt") == 0.1
    assert "lr: 0.1" in (out / "spec.yaml").read_text()
    assert not (out / LOCK_NAME).exists()  # released at the end of the run


def test_a_lock_left_by_kill_9_is_stale_and_the_resume_takes_it_over(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    proc = _start(spec)
    _wait_for(out / "last.ckpt", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == proc.pid  # the file stays, unlocked
    resumed = _train(spec, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    assert f"pid {proc.pid}" in resumed.stdout
    assert "ended without releasing it; taking it over" in resumed.stdout
    assert "resuming from" in resumed.stdout
    assert load_checkpoint(str(out / "last.ckpt"))["epoch"] == 2
    assert not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("name", RECORD_FILES)
def test_a_fresh_run_never_lands_on_a_folder_that_holds_a_run(tmp_path: Path, name: str) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"the user's run " + name.encode())
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    for resume in (None, "auto"):  # --resume auto with no last.ckpt would be a fresh run too
        if resume == "auto" and name == "last.ckpt":
            continue
        with pytest.raises(SpecError) as err:
            torchspec.train(spec, resume=resume, quiet=True)
        text = str(err.value)
        assert f"{out}: error: output_dir {out} already holds a run ({name})" in text
        for choice in ("--resume auto", "--set train.output_dir=", "--overwrite"):
            assert choice in text
    assert _snapshot(out) == before  # nothing touched, no lock left
    assert not (out / LOCK_NAME).exists()


def test_the_cli_refuses_a_fresh_run_on_a_finished_one_with_exit_1(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    torchspec.train(spec, quiet=True)
    before = _snapshot(out)
    again = _train(spec, "--set", "train.optimizer.lr=0.5")
    assert again.returncode == 1 and "already holds a run" in again.stderr, again.stderr
    assert "--overwrite" in again.stderr and "Traceback" not in again.stderr
    assert _snapshot(out) == before
    assert set(RUN_FILES) <= set(before)


def test_resume_path_continues_a_moved_checkpoint_into_its_folder(tmp_path: Path) -> None:
    """--resume PATH is an explicit choice to continue that checkpoint here (DDP's test moves it)."""
    spec = write_spec(tmp_path, SPEC)
    torchspec.train(spec, quiet=True)
    moved = tmp_path / "moved.ckpt"
    (tmp_path / "run" / "last.ckpt").rename(moved)
    history = torchspec.train(spec, ["train.epochs=3"], resume=str(moved), quiet=True)
    assert [row["epoch"] for row in history] == [1, 2, 3]


def test_spec_yaml_alone_is_not_a_run(tmp_path: Path) -> None:
    """A run killed before it recorded anything left only spec.yaml: the next run simply starts."""
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    out.mkdir()
    (out / "spec.yaml").write_text("name: stale\n")
    torchspec.train(spec, quiet=True)
    assert "name: tiny_cnn" in (out / "spec.yaml").read_text()


def test_overwrite_leaves_nothing_of_the_old_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    torchspec.train(spec, ["train.epochs=3"], quiet=True)
    (out / "notes.txt").write_text("mine")  # not a file torchspec writes: kept
    result = _train(spec, "--overwrite", "--set", "train.optimizer.lr=0.05")
    assert result.returncode == 0, result.stderr
    assert "--overwrite: removed the previous run's" in result.stdout
    assert _lr_of(out / "last.ckpt") == _lr_of(out / "best.ckpt") == 0.05
    assert load_checkpoint(str(out / "last.ckpt"))["epoch"] == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header + this run's 2 epochs
    assert "lr: 0.05" in (out / "spec.yaml").read_text()
    meta = torchspec.load_model(out / "model.safetensors")  # this run's weights and spec
    assert meta is not None
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(out)) == sorted([*RUN_FILES, "notes.txt"])


@pytest.mark.parametrize(
    "failing",
    [
        "train.data.source=tensors",  # no inputs file: refused while loading the data
        "train.data={source: python, target: 'os:system'}",  # no --allow-code: refused before import
        "train.optimizer.lr=-1",  # refused by the optimizer, after data and model
    ],
)
def test_a_refused_overwrite_run_leaves_the_old_run_intact(tmp_path: Path, failing: str) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    torchspec.train(spec, ["train.epochs=1"], quiet=True)
    before = _snapshot(out)
    with pytest.raises(SpecError):
        torchspec.train(spec, [failing], overwrite=True, quiet=True)
    assert _snapshot(out) == before  # nothing removed: --overwrite acts only once the run can start


def test_overwrite_and_resume_are_one_or_the_other(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    with pytest.raises(SpecError, match="choose one"):
        torchspec.train(spec, resume="auto", overwrite=True, quiet=True)
    usage = _train(spec, "--resume", "auto", "--overwrite")
    assert usage.returncode == 2 and "not allowed with" in usage.stderr


def test_stale_temporaries_of_our_naming_go_and_nothing_else(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    ours = [
        ".last.ckpt.torchspec-tmp.k3j2_h1g",  # this version's naming
        ".model.safetensors.torchspec-tmp.x8",
        ".probe.torchspec-tmp.abc",
        "last.ckpt.k3j2h1g0.tmp",  # earlier versions' naming
        "best.ckpt.a1b2c3d4.tmp",
        "metrics.csv.tmp",
    ]
    for name in ours:
        (out / name).write_bytes(b"half a file")
    others = ["notes.tmp", "last.ckpt.backup", "metrics.csv.tmp.mine", ".hidden", "last.ckpt.toolong12.tmp"]
    for name in others:
        (out / name).write_text("the user's")
    (out / "best.ckpt.zzzzzzzz.tmp").symlink_to(victim)  # old naming, but a link: left alone
    torchspec.train(spec, resume="auto", quiet=True)  # nothing to resume: a fresh run that cleans up
    left = set(os.listdir(out))
    assert not left & set(ours)
    assert set(others) | {"best.ckpt.zzzzzzzz.tmp"} <= left
    assert all((out / name).read_text() == "the user's" for name in others)
    assert victim.read_text() == "keep me"
