"""Training controls: gradient accumulation equals the big batch, gradient clipping by value, an EMA
of the weights (validated and saved), early stopping; exact resume after kill -9 with all of them."""

from __future__ import annotations

import copy
import csv
import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import cli, write_spec
from test_resume import SPEC as RESUME_SPEC
from test_resume import _assert_identical, _resume, _start, _wait_for

import torchspec
from torchspec.training.checkpoint import load_checkpoint
from torchspec.training.stepper import Ema

# No BatchNorm, no dropout: a step's gradient depends only on which samples it sees.
PLAIN = """\
name: plain
input: [6]
layers:
  - {type: Linear, out_features: 16}
  - Tanh
  - {type: Linear, out_features: 3}
train:
  data: {source: random, samples: SAMPLES, classes: 3, val_fraction: 0}
  epochs: 2
  optimizer: {type: SGD, lr: 0.2, momentum: 0.9}
  output_dir: OUT
"""


VALIDATED = PLAIN.replace("SAMPLES", "64").replace("val_fraction: 0", "val_fraction: 0.25")


def _model(folder: Path, key: str = "model") -> dict[str, torch.Tensor]:
    return torch.load(folder / "last.ckpt", weights_only=True)[key]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("samples", "batch", "accumulate", "extra"),
    [
        (48, 4, 3, []),  # whole groups
        (50, 4, 3, []),  # a partial last batch (2 samples) in a partial last group (2 batches)
        (45, 5, 2, ["train.loss={type: CrossEntropyLoss, reduction: sum}", "train.optimizer.lr=0.02"]),
        (48, 4, 4, ["train.scheduler={type: OneCycleLR, max_lr: 0.3}", "train.warmup_steps=3"]),
    ],
)
def test_accumulation_equals_the_big_batch(
    tmp_path: Path, samples: int, batch: int, accumulate: int, extra: list[str]
) -> None:
    spec = write_spec(tmp_path, PLAIN.replace("SAMPLES", str(samples)), out="small")
    small = [f"train.batch_size={batch}", f"train.accumulate_steps={accumulate}", *extra]
    torchspec.train(spec, small, quiet=True)
    big = [f"train.batch_size={batch * accumulate}", f"train.output_dir={tmp_path / 'big'}", *extra]
    torchspec.train(spec, big, quiet=True)
    a, b = torch.load(tmp_path / "small" / "last.ckpt"), torch.load(tmp_path / "big" / "last.ckpt")
    assert a["step"] == b["step"] == 2 * -(-samples // (batch * accumulate))  # optimizer steps
    for key in a["model"]:
        assert torch.allclose(a["model"][key], b["model"][key], atol=1e-6, rtol=0), key
    rows = [list(csv.DictReader((tmp_path / f / "metrics.csv").open())) for f in ("small", "big")]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    # and it is not the plain small-batch run: accumulation really changed the steps
    torchspec.train(spec, [f"train.batch_size={batch}", f"train.output_dir={tmp_path / 'plain'}"], quiet=True)
    assert torch.load(tmp_path / "plain" / "last.ckpt")["step"] != a["step"]


@pytest.mark.parametrize("clip", [0.001, 0.01])
def test_gradient_clipping_by_value_bounds_every_element(tmp_path: Path, clip: float) -> None:
    # one SGD step of lr 1 from the seeded initial weights: each weight moves by its clipped gradient
    spec = write_spec(tmp_path, PLAIN.replace("SAMPLES", "8"))
    overrides = ["train.batch_size=8", "train.epochs=1", "train.optimizer={type: SGD, lr: 1.0}"]
    torchspec.train(spec, [*overrides, f"train.grad_clip_value={clip}"], quiet=True)
    start = torchspec.build(torchspec.load_spec(spec), seed=0).state_dict()
    moved = torch.cat([(_model(tmp_path / "run")[k] - start[k]).abs().flatten() for k in start])
    assert float(moved.max()) <= clip * (1 + 1e-5)
    assert float(moved.max()) >= clip * (1 - 1e-5)  # some gradient was larger: clipped to exactly clip


def test_ema_follows_timms_rule() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = Ema(model, 0.9)
    shadow = copy.deepcopy(model.state_dict())
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 4))  # moves the running statistics and the counter
        ema.update(model)
        for k, v in model.state_dict().items():
            shadow[k] = shadow[k] * 0.9 + v * 0.1 if v.is_floating_point() else v.clone()
    for k, v in ema.module.state_dict().items():
        assert torch.allclose(v, shadow[k], atol=1e-6), k
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_the_ema_is_validated_and_saved(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, VALIDATED)
    torchspec.train(spec, ["train.batch_size=8", "train.ema={decay: 0.8}", "train.epochs=3"], quiet=True)
    best = torch.load(tmp_path / "run" / "best.ckpt", weights_only=True)
    saved = torchspec.load_model(tmp_path / "run" / "model.safetensors").state_dict()
    assert all(torch.equal(saved[k], best["ema"][k]) for k in saved)  # model.safetensors: the EMA
    assert not all(torch.equal(best["ema"][k], best["model"][k]) for k in saved)
    # the val_loss recorded for the best epoch is the EMA weights' loss
    result = cli(
        "eval", str(spec), "--checkpoint", str(tmp_path / "run" / "model.safetensors"), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    recorded = float(rows[best["epoch"] - 1]["val_loss"])
    import json

    assert abs(json.loads(result.stdout)["loss"] - recorded) < 1e-5


def test_early_stopping_stops_and_a_resume_says_so(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, VALIDATED)
    stop = ["train.batch_size=8", "train.epochs=10", "train.patience=2", "train.min_delta=100"]
    sets = [a for s in stop for a in ("--set", s)]
    result = cli("train", str(spec), *sets)
    assert result.returncode == 0, result.stderr
    assert (
        "early stop after epoch 3: val_loss has not improved by more than 100 for 2 epochs" in result.stdout
    )
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 1 + 3
    again = cli("train", str(spec), *sets, "--resume", "auto")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "--set train.patience=7 --resume auto" in again.stdout
    longer = cli(
        "train",
        str(spec),
        *[a for s in stop for a in ("--set", s)],
        "--set",
        "train.patience=4",
        "--resume",
        "auto",
    )
    assert longer.returncode == 0, longer.stderr
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 1 + 5


# test_resume's run (dropout, Adam, StepLR, shuffle) with every new control at once
EVERY = RESUME_SPEC.replace(
    "  checkpoint_every: 5\n",
    "  checkpoint_every: 3\n  accumulate_steps: 2\n  grad_clip: 1.0\n  grad_clip_value: 0.05\n"
    "  ema: {decay: 0.9}\n  patience: 5\n  freeze: ['0']\n  param_groups: [{params: ['5'], lr: 0.02}]\n",
)


@pytest.mark.usefixtures("one_thread")
def test_kill_9_then_resume_is_exact_with_every_control(tmp_path: Path) -> None:
    assert EVERY != RESUME_SPEC
    torchspec.train(write_spec(tmp_path, EVERY, "reference", out="reference"), quiet=True)
    spec = write_spec(tmp_path, EVERY, "killed", out="killed")
    last = tmp_path / "killed" / "last.ckpt"
    proc = _start(spec)
    _wait_for(last, proc)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(str(last))
    assert (state["epoch"], state["step"]) < (3, 3 * 12) and state["ema"] is not None
    resumed = _resume(spec)
    assert resumed.returncode == 0, resumed.stderr
    for key in ("model", "ema"):
        _assert_identical(_model(tmp_path / "reference", key), _model(tmp_path / "killed", key))
    ref = torchspec.load_model(tmp_path / "reference" / "model.safetensors").state_dict()
    _assert_identical(ref, torchspec.load_model(tmp_path / "killed" / "model.safetensors").state_dict())
