"""Fine-tuning: train.init from every kind of weights file (verified), strict with a documented way
to allow a new head, train.freeze (frozen weights stay bitwise unchanged, BatchNorm statistics
included) and train.param_groups (per-pattern learning rates)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from conftest import cli, write_spec

import torchspec

# A zoo-like model: a named backbone (conv, BatchNorm) and a classifier head `fc`.
BACKBONE = """\
name: NAME
input: [3, 8, 8]
layers:
  - {name: conv1, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1}
  - {name: bn1, type: BatchNorm2d}
  - ReLU
  - {name: conv2, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1}
  - ReLU
  - {name: pool, type: AdaptiveAvgPool2d, output_size: 1}
  - Flatten
  - {name: fc, type: Linear, out_features: CLASSES}
"""
TRAIN = """\
train:
  data: {source: random, samples: 48, classes: 3, val_fraction: 0.25}
  batch_size: 12
  epochs: 1
  optimizer: {type: SGD, lr: 0.01, momentum: 0.9, weight_decay: 0.01}
  output_dir: OUT
"""
FINETUNE = (
    "  init: {path: INIT, new: [fc]}\n  freeze: [conv1, bn1]\n  param_groups: [{params: [fc.*], lr: 0.05}]\n"
)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """The same 10-class weights in every format init reads; BatchNorm statistics not the defaults."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("pretrained")
    spec = write_spec(root, BACKBONE.replace("NAME", "pre").replace("CLASSES", "10") + TRAIN)
    torchspec.train(spec, ["train.data.classes=10"], quiet=True)
    model = torchspec.load_model(root / "run" / "last.ckpt")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert state["bn1.running_var"].ne(1).any()  # trained: statistics that can be told apart
    (root / "run" / "last.ckpt").rename(root / "weights.ckpt")
    torchspec.save_model(model, torchspec.load_spec(spec), root / "weights.safetensors")
    save_file(state, str(root / "plain.safetensors"))
    torch.save(state, root / "weights.pt")
    torch.save({"state_dict": state, "epoch": 3}, root / "wrapped.pth")
    return root, state


FILES = ["weights.ckpt", "weights.safetensors", "plain.safetensors", "weights.pt", "wrapped.pth"]


def _finetune_spec(folder: Path, init: Path, extra: str = FINETUNE) -> Path:
    text = (
        BACKBONE.replace("NAME", "tuned").replace("CLASSES", "3") + TRAIN + extra.replace("INIT", str(init))
    )
    return write_spec(folder, text, out="tuned")


@pytest.mark.parametrize("name", FILES)
def test_fine_tune_with_a_new_head_and_a_frozen_backbone(
    tmp_path: Path, pretrained: tuple[Path, dict[str, torch.Tensor]], name: str
) -> None:
    root, source = pretrained
    result = cli("train", str(_finetune_spec(tmp_path, root / name)))
    assert result.returncode == 0, result.stderr
    said = result.stdout
    assert f"init: {len(source) - 2} tensors loaded from {root / name}" in said
    assert "shape-mismatched (trained from scratch): fc.weight [10, 6] -> [3, 6], fc.bias [10] -> [3]" in said
    assert "frozen: 4 parameter tensors (conv1, bn1)" in said
    ckpt = torch.load(tmp_path / "tuned" / "last.ckpt", weights_only=True)
    after = ckpt["model"]
    for key in (
        "conv1.weight",
        "conv1.bias",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
    ):
        assert torch.equal(after[key], source[key]), key  # frozen: bitwise as loaded
    # conv2 was loaded, then trained; the head is new and trained
    assert not torch.equal(after["conv2.weight"], source["conv2.weight"])
    assert after["fc.weight"].shape == (3, 6)
    # the default group (conv2) at the optimizer's lr, the head at its own; frozen ones in neither
    groups = ckpt["optimizer"]["param_groups"]
    assert [(g["lr"], len(g["params"])) for g in groups] == [(0.01, 2), (0.05, 2)]


def test_a_new_head_is_refused_unless_listed(
    tmp_path: Path, pretrained: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    root = pretrained[0]
    spec = _finetune_spec(tmp_path, root / "weights.pt", "  init: INIT\n")
    result = cli("train", str(spec))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{spec}:18:9: error: train.init" in result.stderr  # located at train.init
    assert "model tensors missing from it or of another shape: fc.weight [10, 6] -> [3, 6]" in result.stderr
    assert "new: [fc.*]" in result.stderr and "strict: false" in result.stderr
    assert not (tmp_path / "tuned" / "model.safetensors").exists()
    # strict: false loads what fits and reports the rest
    loose = _finetune_spec(tmp_path, root / "weights.pt", "  init: {path: INIT, strict: false}\n")
    assert cli("train", str(loose), "--overwrite").returncode == 0


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("  freeze: [layer9]\n", ":18:12:", "train.freeze: 'layer9' matches no parameter of the model"),
        (
            "  param_groups: [{params: [head.*], lr: 0.1}]\n",
            ":18:28:",
            "train.param_groups[0]: 'head.*' matches no trainable parameter",
        ),
    ],
)
def test_patterns_that_match_nothing_are_located_errors(
    tmp_path: Path, extra: str, where: str, message: str
) -> None:
    spec = _finetune_spec(tmp_path, tmp_path, extra)
    result = cli("train", str(spec))
    assert result.returncode == 1 and message in result.stderr
    assert f"{spec}{where}" in result.stderr and "conv1, bn1, conv2, fc" in result.stderr


def test_weights_files_are_verified_before_they_are_trusted(
    tmp_path: Path, pretrained: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    root, state = pretrained
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=1)}, tmp_path / "code.pt")
    nan = {**state, "conv1.weight": torch.full_like(state["conv1.weight"], float("nan"))}
    torch.save(nan, tmp_path / "nan.pt")
    flipped = bytearray((root / "weights.safetensors").read_bytes())
    flipped[-3] ^= 0x40
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    for name, said in [
        ("code.pt", "refers to Python code (argparse.Namespace)"),
        ("nan.pt", "holds non-finite weights (NaN or inf in conv1.weight)"),
        ("flipped.safetensors", "is damaged"),
    ]:
        result = cli("train", str(_finetune_spec(tmp_path, tmp_path / name)))
        assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.stderr, name
