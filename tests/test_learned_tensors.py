"""Learned tensors (``type: Parameter``), ExpandBatch, LayerNorm2d and copies named by ``index``:
the spec features ViT and ConvNeXt need, against real torch modules and real files.

The rules: a Parameter is held by its container (state_dict key = its own path, as torchvision's
``class_token``), reads nothing, has no batch dimension, and meets batched tensors only where
that works at every batch size (Add/Mul broadcasting with a leading 1, ExpandBatch); everything
else is a located error before torch is imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchspec
from torchspec.builder import load_model, save_model
from torchspec.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent

# a miniature ViT (class token, position embedding) with a ConvNeXt-style layer scale inside
TINY = """\
name: tiny
input: [3, 8, 8]
layers:
  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 4, stride: 4}
  - {name: scale, type: Parameter, shape: [4, 1, 1], init: constant, value: 0.5}
  - {name: scaled, type: Mul, from: [scale, conv]}
  - {type: Reshape, shape: [4, -1]}
  - {name: patches, type: Permute, dims: [0, 2, 1]}
  - {name: class_token, type: Parameter, shape: [1, 1, 4]}
  - {name: token, type: ExpandBatch, from: [class_token, patches]}
  - {type: Concat, from: [token, patches]}
  - name: encoder
    type: Sequential
    layers:
      - {name: norm, type: LayerNorm, normalized_shape: 4}
      - {name: pos_embedding, type: Parameter, shape: [1, 5, 4], init: normal, std: 0.02}
      - {type: Add, from: [norm, pos_embedding]}
  - {type: Select, dim: 1, index: 0}
"""
KEYS = [
    "scale", "class_token", "conv.weight", "conv.bias",
    "encoder.pos_embedding", "encoder.norm.weight", "encoder.norm.bias",
]  # fmt: skip


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def by_hand(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    h = model.scale * model.conv(x)
    patches = h.reshape(x.shape[0], 4, -1).permute(0, 2, 1)
    tokens = torch.cat([model.class_token.expand(x.shape[0], -1, -1), patches], dim=1)
    enc = model.encoder
    return (enc.norm(tokens) + enc.pos_embedding)[:, 0]


def test_parameters_are_held_by_their_container_under_their_own_name(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    model = torchspec.build(path, seed=0).eval()
    # torch lists a module's own parameters before its children's: so does the analytic state
    assert list(model.state_dict()) == KEYS
    report = torchspec.infer_shapes(path)
    assert report.state_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(report.state_shapes()) == KEYS
    assert report.params == sum(p.numel() for p in model.parameters())
    assert isinstance(model.class_token, torch.nn.Parameter) and model.class_token.requires_grad
    assert "class_token = self.class_token" in model.code  # a get_attr node, not a submodule
    assert [name for name, _ in model.named_children()].count("class_token") == 0
    for batch in (1, 3):  # checked at batch 1, runs at every batch
        x = torch.randn(batch, 3, 8, 8)
        with torch.no_grad():
            assert torch.equal(model(x), by_hand(model, x))


def test_init_is_what_the_spec_says_and_reproducible(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    model = torchspec.build(path, seed=0)
    assert torch.equal(model.scale, torch.full((4, 1, 1), 0.5))
    assert torch.equal(model.class_token, torch.zeros(1, 1, 4))
    pos = model.encoder.pos_embedding
    assert pos.std().item() == pytest.approx(0.02, rel=0.5) and pos.abs().max() > 0
    again = torchspec.build(path, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    other = torchspec.build(path, seed=1)
    assert not torch.equal(other.encoder.pos_embedding, pos)
    big = TINY.replace("shape: [1, 1, 4]}", "shape: [1, 1, 4], init: normal, mean: 3.0, std: 0.5}")
    big = big.replace("value: 0.5", "value: -2")
    built = torchspec.build(write(tmp_path, big, "big.yaml"), seed=0)
    assert torch.equal(built.scale, torch.full((4, 1, 1), -2.0))
    assert 1.0 < built.class_token.mean().item() < 5.0
    ones = TINY.replace("init: constant, value: 0.5", "init: ones")
    assert torch.equal(torchspec.build(write(tmp_path, ones, "ones.yaml")).scale, torch.ones(4, 1, 1))


def test_check_shows_the_tensor_without_a_batch_and_counts_it(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    proc = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", str(path), "--batch", "3", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import json

    rows = {row["path"]: row for row in json.loads(proc.stdout)["layers"]}
    assert rows["class_token"]["output"] == [1, 1, 4] and rows["class_token"]["params"] == 4
    assert rows["scale"]["output"] == [4, 1, 1]
    assert rows["token"]["output"] == [3, 1, 4]  # expanded over the batch of 3
    assert rows["encoder.pos_embedding"]["output"] == [1, 5, 4]
    assert rows["scaled"]["from"] == ["scale", "conv"]


def test_a_parameter_model_saves_loads_and_exports(tmp_path: Path) -> None:
    spec = torchspec.load_spec(write(tmp_path, TINY))
    model = torchspec.build(spec, seed=3).eval()
    save_model(model, spec, tmp_path / "m.safetensors")
    again = load_model(tmp_path / "m.safetensors").eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), model(x))


def test_layernorm2d_is_torchvisions(tmp_path: Path) -> None:
    from torchvision.models.convnext import LayerNorm2d

    text = "name: n\ninput: [6, 5, 7]\nlayers:\n  - {name: norm, type: LayerNorm2d, eps: 1.0e-6}\n"
    model = torchspec.build(write(tmp_path, text), seed=0).eval()
    theirs = LayerNorm2d(6, eps=1e-6).eval()
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    model.load_state_dict({f"norm.{k}": v for k, v in theirs.state_dict().items()}, strict=True)
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        assert torch.equal(model(x), theirs(x))
    assert model.norm.normalized_shape == (6,)  # inferred from the channels


# -- mistakes: located errors, never a traceback --------------------------------------------------
HEAD = "name: e\ninput: [3, 4, 4]\nlayers:\n"
CONV = "  - {name: conv, type: Conv2d, out_channels: 8, kernel_size: 1}\n"
SEQ = "  - {type: Reshape, shape: [8, -1]}\n  - {name: seq, type: Permute, dims: [0, 2, 1]}\n"
ERRORS = [
    # (layers, line of the error, text at its column, message part, hint part)
    (
        CONV + "  - {name: p, type: Parameter, shape: [8, 1, 1], from: conv}\n",
        5,
        "conv}",
        "is a learned tensor and reads nothing, but has from:",
        "remove from:",
    ),
    (
        CONV + "  - {name: p, type: Parameter, shape: [8, 1, 1], std: 0.1}\n"
        "  - {type: Mul, from: [p, conv]}\n",
        5,
        "{name: p",
        "std set but init is 'zeros'",
        "",
    ),
    (
        CONV + "  - {name: p, type: Parameter, shape: [8, 1, 1], init: constant}\n"
        "  - {type: Mul, from: [p, conv]}\n",
        5,
        "{name: p",
        "init: constant needs `value:`",
        "",
    ),
    (
        CONV + SEQ + "  - {name: cls, type: Parameter, shape: [1, 1, 8]}\n"
        "  - {type: Concat, from: [cls, seq]}\n",
        8,
        "[cls, seq]",
        "[1, 1, 8] (cls: after Parameter at layers[3]) has no batch",
        "ExpandBatch",
    ),
    (
        CONV + SEQ + "  - {name: pos, type: Parameter, shape: [2, 16, 8]}\n"
        "  - {type: Add, from: [seq, pos]}\n",
        8,
        "[seq, pos]",
        "its dimension 0 (2) lines up with the batch",
        "shape: [1, 16, 8]",
    ),
    (
        CONV + SEQ + "  - {name: cls, type: Parameter, shape: [2, 1, 8]}\n"
        "  - {name: t, type: ExpandBatch, from: [cls, seq]}\n  - {type: Concat, from: [t, seq]}\n",
        8,
        "[cls, seq]",
        "dimension 0 of [2, 1, 8]",
        "leading 1",
    ),
    (
        CONV + "  - {name: p, type: Parameter, shape: [1, 8, 4, 4]}\n"
        "  - {type: ExpandBatch, from: [conv, p]}\n",
        6,
        "[conv, p]",
        "has a batch dimension but [1, 8, 4, 4]",
        "",
    ),
    (
        CONV + "  - {name: p, type: Parameter, shape: [1, 8]}\n  - {type: ReLU, from: p}\n",
        6,
        "{type: ReLU",
        "the model's output [1, 8]",
        "combine it with the input",
    ),
    (
        CONV + "  - {name: p, type: Parameter, shape: [8, 1, 1]}\n"
        "  - {name: r, type: ReLU, from: p, inplace: true}\n  - {type: Mul, from: [r, conv]}\n",
        6,
        "true}",
        "would overwrite the learned tensor 'p'",
        "inplace: false",
    ),
    (
        CONV + "  - {type: LayerNorm2d, normalized_shape: 6}\n",
        5,
        "{type: LayerNorm2d",
        "normalized_shape is 6 but the incoming shape is [N, 8, 4, 4]",
        "",
    ),
    (
        "  - Flatten\n  - {type: LayerNorm2d}\n",
        5,
        "{type: LayerNorm2d",
        "expects (C, H, W) samples (rank 3)",
        "",
    ),
]


@pytest.mark.parametrize(("layers", "line", "at", "message", "hint"), ERRORS)
def test_mistakes_are_located_errors(
    tmp_path: Path, layers: str, line: int, at: str, message: str, hint: str
) -> None:
    text = HEAD + layers
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        torchspec.infer_shapes(path)
    problem = info.value.problems[0]
    col = text.splitlines()[line - 1].index(at) + 1
    assert (problem.file, problem.line, problem.col) == (str(path), line, col), problem.format()
    assert message in problem.message, problem.message
    assert any(hint in h for h in problem.hints) if hint else True


def test_the_cli_reports_a_batch_mix_at_its_line_with_exit_1(tmp_path: Path) -> None:
    text = HEAD + ERRORS[3][0]
    path = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{path}:8:")
    assert "hint: expand it over the batch first" in proc.stderr


def test_what_check_accepts_at_batch_1_runs_at_every_batch() -> None:
    """The batch rules' point: [1, 1, 8] concatenated to a batch of 1 would check, and fail at 2."""
    x = torch.randn(1, 4, 8)
    torch.cat([torch.zeros(1, 1, 8), x], dim=1)  # torch accepts this at batch 1 ...
    with pytest.raises(RuntimeError):
        torch.cat([torch.zeros(1, 1, 8), torch.randn(2, 4, 8)], dim=1)  # ... and not at 2


# -- repeat: copies named by index ----------------------------------------------------------------
def test_a_name_using_index_names_each_copy(tmp_path: Path) -> None:
    text = HEAD + (
        "  - {name: layer_$index, type: Conv2d, out_channels: 3, kernel_size: 1, repeat: 3}\n"
        "  - {name: stage$(index + 1), type: ReLU, repeat: 2}\n"
        "  - {name: box, type: Identity, repeat: 2}\n"
    )
    model = torchspec.build(write(tmp_path, text), device="meta")
    names = [name for name, _ in model.named_children()]
    assert names == ["layer_0", "layer_1", "layer_2", "stage1", "stage2", "box"]
    assert [name for name, _ in model.box.named_children()] == ["0", "1"]  # a name without index


def test_copies_named_alike_are_a_duplicate_name_error(tmp_path: Path) -> None:
    text = HEAD + "  - {name: l$(index // 2), type: ReLU, repeat: 3}\n"
    with pytest.raises(SpecError) as info:
        torchspec.load_spec(write(tmp_path, text))
    assert "duplicate layer name 'l0'" in info.value.problems[0].message
    assert info.value.problems[0].line == 4


def test_a_left_out_parameter_that_is_read_by_name_is_an_error(tmp_path: Path) -> None:
    text = (
        HEAD
        + CONV
        + (
            "  - {name: p, type: Parameter, shape: [8, 1, 1], when: false}\n"
            "  - {name: scaled, type: Mul, from: [p, conv]}\n"
        )
    )
    with pytest.raises(SpecError) as info:
        torchspec.load_spec(write(tmp_path, text))
    problem = info.value.problems[0]
    assert "'p' is left out, and it reads nothing" in problem.message
    assert (problem.line, problem.col) == (6, text.splitlines()[5].index("[p, conv]") + 1)
    # left out and read by no one: the next layer reads the one before, as if it were not there
    fine = HEAD + CONV + "  - {name: p, type: Parameter, shape: [8, 1, 1], when: false}\n  - ReLU\n"
    model = torchspec.build(write(tmp_path, fine, "fine.yaml"), device="meta")
    assert [name for name, _ in model.named_children()] == ["conv", "1"]
