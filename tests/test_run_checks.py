"""Checks users trip on, caught by `check` (torch-free) and by `train` before any data: the loss
against the model's output and the data's labels, the scheduler against the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, write_spec

HEAD = """\
name: checked
input: INPUT
layers:
LAYERS
train:
  data: DATA
  batch_size: 16
  epochs: 4
  output_dir: OUT
"""
FLAT = "  - Flatten\n  - {type: Linear, out_features: 4}\n"
NO_FLATTEN = (
    "  - {type: Conv2d, out_channels: 3, kernel_size: 3, padding: 1}\n  - {type: Linear, out_features: 4}\n"
)
PER_POSITION = "  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
MOTION = "{source: synthetic-motion, samples: 64, classes: 4}"  # 64 samples: 52 train, 4 steps of 16


def _spec(
    tmp_path: Path,
    layers: str = FLAT,
    extra: str = "",
    data: str = "{source: random, samples: 64, classes: 4}",
    input_: str = "[1, 8, 8]",
) -> Path:
    text = HEAD.replace("INPUT", input_).replace("LAYERS", layers.rstrip("\n")).replace("DATA", data)
    return write_spec(tmp_path, text + extra)


# (layers, extra train keys, data, severity, line:col, message, fix)
CASES = {
    "CrossEntropyLoss without Flatten": (
        NO_FLATTEN, "", None, "error", "5:5", "this Linear makes a per-sample output of shape [3, 8, 4]",
        "add Flatten before Linear",
    ),
    "NLLLoss without Flatten": (
        NO_FLATTEN, "  loss: NLLLoss\n", None, "error", "5:5", "NLLLoss reads classes from dimension 1",
        "add Flatten before Linear",
    ),
    "BCEWithLogitsLoss of 4 outputs on labels": (
        FLAT, "  loss: BCEWithLogitsLoss\n", None, "error", "11:9",
        "BCEWithLogitsLoss needs one target per output (4 per sample)", "use CrossEntropyLoss",
    ),
    "MSELoss on class labels": (
        FLAT, "  loss: MSELoss\n", MOTION, "error", "11:9",
        "MSELoss is a regression loss, but train.data (synthetic-motion) gives class labels",
        "train.loss: CrossEntropyLoss",
    ),
    "L1Loss on a Softmax head": (
        FLAT + "  - {type: Softmax, dim: 1}\n", "  loss: L1Loss\n",
        "{source: random, samples: 64, task: regression}", "warning", "12:9", "L1Loss on a Softmax head",
        "drop the Softmax",
    ),
    "CosineAnnealingLR shorter than the run": (
        FLAT, "  scheduler: {type: CosineAnnealingLR, T_max: 2}\n", None, "warning", "11:47",
        "T_max 2 < epochs 4: the learning rate reaches eta_min at epoch 2, then climbs again", "set T_max: 4",
    ),
    "OneCycleLR too few steps": (
        FLAT, "  scheduler: {type: OneCycleLR, max_lr: 0.1, total_steps: 10}\n", None, "error", "11:59",
        "OneCycleLR total_steps 10, but the run makes 16 optimizer steps (4 epochs x 4)",
        "drop total_steps (it defaults to epochs x steps per epoch = 16)",
    ),
    "OneCycleLR too many steps": (
        FLAT, "  scheduler: {type: OneCycleLR, max_lr: 0.1, total_steps: 40}\n", None, "warning", "11:59",
        "the cycle never finishes", "drop total_steps",
    ),
    "OneCycleLR with accumulation": (
        FLAT, "  accumulate_steps: 2\n  scheduler: {type: OneCycleLR, max_lr: 0.1, total_steps: 16}\n", None,
        "warning", "12:59", "the run makes 8 optimizer steps (4 epochs x 2)", "= 8)",
    ),
    "warmup longer than the run": (
        FLAT, "  warmup_steps: 100\n", None, "warning", "11:17",
        "warmup_steps 100 is longer than the run (16 optimizer steps)", "use fewer warmup steps than 16",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_check_catches_it_located_with_the_fix(tmp_path: Path, case: str) -> None:
    layers, extra, data, severity, where, message, fix = CASES[case]
    spec = _spec(tmp_path, layers, extra, data or "{source: random, samples: 64, classes: 4}")
    result = cli("check", str(spec))
    assert result.returncode == (1 if severity == "error" else 0), result.stderr
    assert f"{spec}:{where}: {severity}: " in result.stderr
    assert message in result.stderr and fix in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("layers", "extra", "data"),
    [
        (FLAT, "", None),  # CrossEntropyLoss after Flatten
        (PER_POSITION, "", "{source: random, samples: 64, task: regression}"),  # per-position
        (FLAT, "  loss: MSELoss\n", "{source: random, samples: 64, task: regression}"),
        (FLAT, "  scheduler: {type: CosineAnnealingLR, T_max: 4}\n  warmup_steps: 16\n", None),
        (FLAT, "  scheduler: {type: OneCycleLR, max_lr: 0.1, total_steps: 16}\n", None),
        (NO_FLATTEN, "  loss: MSELoss\n", "{source: random, samples: 64, task: regression}"),
    ],
)
def test_a_sound_run_gets_no_complaint(tmp_path: Path, layers: str, extra: str, data: str | None) -> None:
    spec = _spec(tmp_path, layers, extra, data or "{source: random, samples: 64, classes: 4}")
    result = cli("check", str(spec))
    assert result.returncode == 0 and "warning" not in result.stderr and "error" not in result.stderr, (
        result.stderr
    )


def test_train_refuses_before_loading_anything(tmp_path: Path) -> None:
    spec = _spec(tmp_path, NO_FLATTEN)
    result = cli("train", str(spec))
    assert result.returncode == 1 and "add Flatten before Linear" in result.stderr
    assert not (tmp_path / "run").exists()
