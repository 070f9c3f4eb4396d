"""Runs and paths: one rule for data paths and output_dir (relative to the spec file's folder), a
run folder's spec.yaml usable as is from anywhere, and a finished run resumed says there is
nothing left to do and how to train longer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import cli

from torchspec.training.paths import PATH_KEYS, absolute_paths

SPEC = """\
name: paths
input: [4]
layers:
  - {type: Linear, out_features: 8}
  - ReLU
  - {type: Linear, out_features: 3}
train:
  data: DATA
  batch_size: 16
  epochs: 2
  optimizer: {type: SGD, lr: 0.1}
  output_dir: out/run
"""

SOURCES = {  # every way a source names a file, relative to the spec's folder
    "npz": "{source: tensors, inputs: data/d.npz}",
    "npy pair": "{source: tensors, inputs: data/x.npy, targets: data/y.npy}",
    "pt": "{source: tensors, inputs: data/d.pt, inputs_key: x, targets_key: y}",
}


def _data(folder: Path) -> None:
    import torch

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 4)).astype(np.float32), rng.integers(0, 3, 48)
    (folder / "data").mkdir(parents=True)
    np.savez(folder / "data" / "d.npz", x=x, y=y)
    np.save(folder / "data" / "x.npy", x)
    np.save(folder / "data" / "y.npy", y)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, folder / "data" / "d.pt")


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "torchspec", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("source", SOURCES)
def test_paths_follow_the_spec_folder_and_the_saved_spec_works_from_anywhere(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchspec

    project, elsewhere, third = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "third"
    _data(project)
    elsewhere.mkdir()
    third.mkdir()
    (project / "spec.yaml").write_text(SPEC.replace("DATA", SOURCES[source]))
    monkeypatch.chdir(elsewhere)
    torchspec.train("../project/spec.yaml", quiet=True)
    run = project / "out" / "run"  # output_dir: relative to the spec's folder, like the data
    assert (run / "model.safetensors").is_file() and not (elsewhere / "out").exists()
    saved = yaml.safe_load((run / "spec.yaml").read_text())["train"]
    assert saved["output_dir"] == str(run)
    for key in PATH_KEYS["tensors"]:
        if key in saved["data"]:
            assert os.path.isabs(saved["data"][key]) and os.path.isfile(saved["data"][key])

    # the saved spec, as it is, from another folder and from the run folder itself
    results = []
    places = ((third, str(run / "spec.yaml")), (run, "spec.yaml"), (elsewhere, "../project/spec.yaml"))
    for cwd, spec in places:
        monkeypatch.chdir(cwd)
        done = cli("eval", spec, "--checkpoint", str(run / "model.safetensors"), "--format", "json")
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    assert results[0] == results[1] == results[2]


def test_the_cli_resolves_paths_in_a_real_process(tmp_path: Path) -> None:
    # the same rule for `torchspec` launched from another folder (a fresh process, its own cwd)
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _data(project)
    elsewhere.mkdir()
    (project / "spec.yaml").write_text(SPEC.replace("DATA", SOURCES["npz"]))
    trained = _run(elsewhere, "train", "../project/spec.yaml", "--quiet", "--set", "train.epochs=1")
    assert trained.returncode == 0, trained.stderr
    assert (project / "out" / "run" / "model.safetensors").is_file()
    assert os.listdir(elsewhere) == []


def test_the_saved_spec_moves_with_its_paths_absolute(tmp_path: Path) -> None:
    # every path key of every source, made absolute against the spec's folder; absolute ones kept
    base = str(tmp_path)
    train = {
        "data": {"source": "video-folder", "root": "v", "list_file": "../l.txt"},
        "val": {"source": "image-folder", "root": "/abs/i"},
        "test": {"source": "torchvision", "name": "MNIST", "root": "~/tv"},
        "init": {"path": "w/model.safetensors"},
        "output_dir": "runs/x",
    }
    out = absolute_paths(train, base)
    assert out["data"] == {
        "source": "video-folder",
        "root": str(tmp_path / "v"),
        "list_file": str(tmp_path.parent / "l.txt"),
    }
    assert out["val"]["root"] == "/abs/i"
    assert out["test"]["root"] == os.path.expanduser("~/tv")
    assert out["init"]["path"] == str(tmp_path / "w" / "model.safetensors")
    assert out["output_dir"] == str(tmp_path / "runs" / "x")
    assert train["data"]["root"] == "v"  # a copy: the config is untouched


def test_resuming_a_finished_run_says_nothing_is_left_and_how_to_train_longer(tmp_path: Path) -> None:
    _data(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("DATA", SOURCES["npz"]))
    assert _run(tmp_path, "train", str(spec), "--quiet").returncode == 0
    run = tmp_path / "out" / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.name.startswith(".")}
    again = _run(tmp_path, "train", str(spec), "--resume", "auto")
    assert again.returncode == 0, again.stderr
    said = again.stdout + again.stderr
    assert f"nothing to do: {run / 'last.ckpt'} is a finished run (2 of 2 epochs done)" in said
    longer = f"torchspec train {spec} --set train.epochs=4 --resume auto"
    assert longer in said
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert after == before  # nothing rewritten
    # the command it gives trains the two more epochs
    longer_run = _run(tmp_path, *longer.split()[1:], "--quiet")
    assert longer_run.returncode == 0, longer_run.stderr
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 4
