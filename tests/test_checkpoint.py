"""Checkpoints: atomic writes (a kill mid-save never leaves an unreadable last.ckpt), weights_only
loading, the per-layer diff for a checkpoint that does not match the spec, and the NaN stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_spec

import torchspec
from torchspec.errors import SpecError
from torchspec.fileio import WriteError
from torchspec.training.checkpoint import load_checkpoint, save_checkpoint

SPEC = """\
name: small
input: [6]
layers:
  - {name: hidden, type: Linear, out_features: 16}
  - ReLU
  - {name: head, type: Linear, out_features: 3}
train:
  data: {source: random, samples: 64, classes: 3}
  batch_size: 16
  epochs: 2
  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}
  output_dir: OUT
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def test_checkpoint_is_weights_only_loadable_and_complete(tmp_path: Path) -> None:
    torchspec.train(write_spec(tmp_path, SPEC), quiet=True)
    raw = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)  # no pickled code inside
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "batch",
        "step",
        "rng",
        "history",
        "spec",
    ):
        assert key in raw
    assert raw["epoch"] == 2 and raw["batch"] == 0 and raw["step"] == 8
    assert set(raw["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert (tmp_path / "run" / "best.ckpt").exists()
    assert not [p for p in os.listdir(tmp_path / "run") if p.endswith(".tmp")]


def test_failed_save_leaves_previous_checkpoint_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "last.ckpt")
    save_checkpoint(path, {"value": torch.arange(3)})

    def crash(obj: object, handle: object) -> None:
        handle.write(b"PK\x03\x04 half a zip")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(WriteError, match=r"cannot write .*last\.ckpt: disk full"):
        save_checkpoint(path, {"value": torch.arange(5)})
    monkeypatch.undo()
    # the file is the first save, intact (not a full checkpoint: read it with torch, not load_checkpoint)
    assert torch.equal(torch.load(path, weights_only=True)["value"], torch.arange(3))
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_partial_temp_file_is_ignored_on_resume(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    torchspec.train(spec, ["train.epochs=1"], quiet=True)
    # what a kill -9 during a save leaves behind: a torn temp file next to the good checkpoint
    (tmp_path / "run" / "last.ckpt.x1y2z3.tmp").write_bytes(b"PK\x03\x04 torn")
    history = torchspec.train(spec, resume="auto", quiet=True)
    assert [row["epoch"] for row in history] == [1, 2]


KILLER = """
import sys, torch
from torchspec.training.checkpoint import save_checkpoint
path, i = sys.argv[1], 0
while True:
    i += 1
    save_checkpoint(path, {"i": i, "weights": torch.full((1_000_000,), float(i))})
    print(i, flush=True)
"""


def test_kill_9_during_saves_never_corrupts_last_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one checkpoint written; the next save is under way
        time.sleep(float(rng.uniform(0, 0.05)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = torch.load(path, weights_only=True)
        assert torch.equal(state["weights"], torch.full((1_000_000,), float(state["i"])))


def test_checkpoint_of_another_model_is_refused_with_a_per_layer_diff(tmp_path: Path) -> None:
    torchspec.train(write_spec(tmp_path, SPEC), ["train.epochs=1"], quiet=True)
    wider = write_spec(tmp_path, SPEC.replace("out_features: 16", "out_features: 32"), "wider")
    with pytest.raises(SpecError) as info:
        torchspec.train(wider, resume="auto", quiet=True)
    text = str(info.value)
    assert "the checkpoint does not match the spec (3 tensors differ)" in text
    assert "hidden  weight  [32, 6]   [16, 6]" in text
    assert "head    weight  [3, 32]   [3, 16]" in text
    assert "size mismatch" not in text  # not torch's raw dump


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="cannot read checkpoint"):
        load_checkpoint(str(bad))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    # Epoch 1 (steps 1-4) trains at lr 0.1; StepLR then multiplies it to 3e38, which turns the weights
    # to inf in step 5 (whose loss is still finite): the checkpoint due after it must not be
    # written, and step 6's loss is NaN: the run stops, keeping step 4's checkpoint.
    overrides = [
        "train.scheduler={type: StepLR, step_size: 1, gamma: 3.0e+39}",
        "train.data.scale=1000",
        "train.checkpoint_every=1",
        "layers.1=Identity",
    ]
    reference = [*overrides, "train.epochs=1", f"train.output_dir={tmp_path / 'good'}"]
    torchspec.train(spec, reference, quiet=True)
    good = load_checkpoint(str(tmp_path / "good" / "last.ckpt"))
    with pytest.raises(SpecError) as info:
        torchspec.train(spec, overrides, quiet=True)
    text = str(info.value)
    assert "the loss is nan at step 6 (epoch 2, batch 2); training stopped" in text
    assert "the last good checkpoint" in text and "is kept" in text
    kept = load_checkpoint(str(tmp_path / "run" / "last.ckpt"))
    assert kept["step"] == good["step"] == 4
    for key, tensor in kept["model"].items():
        assert torch.equal(tensor, good["model"][key])


def test_inf_in_data_stops_at_the_first_step(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    with pytest.raises(SpecError, match=r"the loss is (nan|inf) at step 1 \(epoch 1, batch 1\)"):
        torchspec.train(spec, ["train.data.scale=.inf"], quiet=True)
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_non_finite_validation_loss_stops_the_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    # the training data is ordinary; the validation inputs overflow the model to inf
    val = "train.val={source: random, samples: 16, classes: 3, scale: 1.0e+38}"
    with pytest.raises(SpecError) as info:
        torchspec.train(spec, [val], quiet=True)
    text = str(info.value)
    assert "the validation loss is" in text and "after epoch 1 (step 4); training stopped" in text
    assert not (tmp_path / "run" / "metrics.csv").exists()  # never recorded as a result
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_state_mismatch_hints_are_the_callers() -> None:
    from torchspec.errors import SpecError
    from torchspec.training.checkpoint import FOREIGN_CHECKPOINT_HINTS, load_state_checked

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    found = torch.nn.Sequential(torch.nn.Linear(4, 5)).state_dict()
    with pytest.raises(SpecError) as info:
        load_state_checked(model, found, "x.ckpt")
    assert "no --resume" in str(info.value)
    with pytest.raises(SpecError) as info:
        load_state_checked(model, found, "x.ckpt", hints=FOREIGN_CHECKPOINT_HINTS)
    assert "pass a checkpoint written for this spec" in str(info.value)
    assert "--resume" not in str(info.value)


def test_checkpoints_and_weights_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    """mkstemp and safetensors create files 0600; ours are shared like any file the user writes."""
    import stat

    import torchspec
    from torchspec.training.checkpoint import save_checkpoint

    old = os.umask(0o022)
    try:
        save_checkpoint(str(tmp_path / "last.ckpt"), {"step": 1})
        spec = torchspec.load_spec(Path(__file__).resolve().parents[1] / "specs" / "lenet5.yaml")
        torchspec.save_model(torchspec.build(spec), spec, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    for name in ("last.ckpt", "m.safetensors"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
