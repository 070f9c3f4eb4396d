"""specs/espcn.yaml and specs/audio_prelu.yaml: each is its hand-written torch model (strict
state_dict, equal outputs) and trains end to end from the command line."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import torchspec

Shape = tuple[int, ...]
SPECS = Path(__file__).resolve().parents[1] / "specs"


def espcn(r: int) -> nn.Module:
    """ESPCN as Shi et al. (2016) write it: 5x5 64, 3x3 32, 3x3 r^2, tanh, sub-pixel shuffle."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 64, 5, padding=2),
            **{"1": nn.Tanh()},
            conv2=nn.Conv2d(64, 32, 3, padding=1),
            **{"3": nn.Tanh()},
            conv3=nn.Conv2d(32, r * r, 3, padding=1),
            shuffle=nn.PixelShuffle(r),
        )
    )


def audio_prelu() -> nn.Module:
    """Three conv blocks (Conv1d, InstanceNorm1d with affine weights, per-channel PReLU)."""

    def block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
        return [
            nn.Conv1d(c_in, c_out, kernel, stride=stride),
            nn.InstanceNorm1d(c_out, affine=True),
            nn.PReLU(c_out),
        ]

    return nn.Sequential(
        *block(1, 32, 80, 16), nn.MaxPool1d(4),
        *block(32, 64, 3), nn.MaxPool1d(4),
        *block(64, 64, 3), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 35),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "overrides", "reference", "sample", "out"),
    [
        ("espcn.yaml", [], lambda: espcn(3), (1, 32, 32), (1, 96, 96)),
        ("espcn.yaml", ["vars.r=2"], lambda: espcn(2), (1, 20, 24), (1, 40, 48)),
        ("audio_prelu.yaml", [], audio_prelu, (1, 16000), (35,)),
    ],
)
def test_spec_is_the_hand_written_model(
    name: str, overrides: list[str], reference: Callable[[], nn.Module], sample: Shape, out: Shape
) -> None:
    spec = torchspec.load_spec(SPECS / name, overrides=overrides)
    if sample != tuple(spec.input):
        spec = torchspec.load_spec(SPECS / name, overrides=[*overrides, f"input={list(sample)}"])
    report = torchspec.infer_shapes(spec, batch=2)
    assert report.output == (2, *out)
    model, ref = torchspec.build(spec, seed=0).eval(), reference().eval()
    ref.load_state_dict(model.state_dict(), strict=True)
    assert report.params == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, *sample)
    assert torch.allclose(model(x), ref(x), atol=1e-6)


@pytest.mark.parametrize("name", ["espcn.yaml", "audio_prelu.yaml"])
def test_spec_trains_from_the_cli(tmp_path: Path, name: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "torchspec", "train", str(SPECS / name), "--set", "train.epochs=1",
         "--set", "train.data.samples=48", "--set", f"train.output_dir={tmp_path}"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["train_loss"]))
    assert (tmp_path / "model.safetensors").is_file()
