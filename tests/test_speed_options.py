"""The train section's speed options: each applies for real, or fails with a located error, or falls
back with a one-line notice. Real torch on the CPU; torch.compile itself is only checked for wiring
(compiling on two cores takes minutes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import write_spec

import torchspec
from torchspec.errors import SpecError
from torchspec.training import loop, setup

CNN2D = """\
name: cnn
input: [3, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - Flatten
  - {type: Linear, out_features: 3}
train:
  data: {source: random, samples: 24, classes: 3, val_fraction: 0.25}
  batch_size: 6
  epochs: 1
  output_dir: OUT
"""
CNN3D = CNN2D.replace("[3, 8, 8]", "[2, 4, 8, 8]").replace("Conv2d", "Conv3d")
MLP = CNN2D.replace("[3, 8, 8]", "[12]").replace(
    "  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n",
    "  - {type: Linear, out_features: 8}\n",
)


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[torch.nn.Module]:
    """The model train() builds, to look at after (or during) training."""
    built: list[torch.nn.Module] = []
    real = setup.build_from_report

    def build(*args: Any, **kwargs: Any) -> torch.nn.Sequential:
        model = real(*args, **kwargs)
        built.append(model)
        return model

    monkeypatch.setattr(setup, "build_from_report", build)
    return built


def _record_inputs(model: torch.nn.Module, seen: list[torch.Tensor]) -> Callable[..., None]:
    def hook(module: torch.nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen.append(output)
        seen.append(args[0])

    return hook


def test_bf16_autocast_on_the_cpu_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _capture(monkeypatch)
    seen: list[torch.Tensor] = []
    real_to = loop.apply_speed

    def apply(model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        model[3].register_forward_hook(_record_inputs(model, seen))  # type: ignore[index]
        return real_to(model, *args, **kwargs)

    monkeypatch.setattr(loop, "apply_speed", apply)
    history = torchspec.train(write_spec(tmp_path, CNN2D, out="out", extra="  precision: bf16\n"), quiet=True)
    assert history[0]["step"] == 3 and torch.isfinite(torch.tensor(history[0]["train_loss"]))
    assert seen[0].dtype == torch.bfloat16  # the Linear ran under autocast
    assert built[0][3].weight.dtype == torch.float32  # master weights stay fp32


@pytest.mark.parametrize(("text", "fmt"), [(CNN2D, torch.channels_last), (CNN3D, torch.channels_last_3d)])
def test_channels_last_sets_the_memory_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fmt: torch.memory_format
) -> None:
    built = _capture(monkeypatch)
    inputs: list[torch.Tensor] = []
    real_apply = loop.apply_speed

    def apply(model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        model[0].register_forward_pre_hook(lambda module, args: inputs.append(args[0]))  # type: ignore[index]
        return real_apply(model, *args, **kwargs)

    monkeypatch.setattr(loop, "apply_speed", apply)
    torchspec.train(write_spec(tmp_path, text, out="out", extra="  channels_last: true\n"), quiet=True)
    weight = built[0][0].weight  # type: ignore[index]
    assert weight.is_contiguous(memory_format=fmt) and not weight.is_contiguous()
    assert inputs and all(x.is_contiguous(memory_format=fmt) and not x.is_contiguous() for x in inputs)


def test_channels_last_without_convolutions_is_a_located_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, MLP, out="out", extra="  channels_last: true\n")
    with pytest.raises(SpecError) as err:
        torchspec.train(spec, quiet=True)
    assert f"{spec}:13:18: error: channels_last: true needs a net of 2-d or of 3-d convolutions" in str(
        err.value
    )
    assert not (tmp_path / "out").exists()


def test_compile_is_wired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _capture(monkeypatch)
    calls: list[torch.nn.Module] = []

    def fake_compile(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        calls.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    torchspec.train(write_spec(tmp_path, CNN2D, out="out", extra="  compile: true\n"), quiet=True)
    assert calls == [built[0]]
    calls.clear()
    torchspec.train(write_spec(tmp_path, CNN2D, out="out2"), quiet=True)  # a run of its own
    assert calls == []  # off by default


def test_fp16_on_the_cpu_is_a_located_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CNN2D, out="out", extra="  precision: fp16\n  device: cpu\n")
    with pytest.raises(SpecError) as err:
        torchspec.train(spec, quiet=True)
    text = str(err.value)
    assert f"{spec}:13:14: error: precision: fp16 needs a CUDA device; this run is on cpu" in text
    assert "use precision: bf16" in text


def test_cuda_only_options_fall_back_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path, CNN2D, out="out", extra="  pin_memory: true\n  cudnn_benchmark: true\n  device: cpu\n"
    )
    history = torchspec.train(spec)
    out = capsys.readouterr().out
    assert "notice: pin_memory: true needs CUDA; this run is on cpu, so batches are not pinned" in out
    assert "notice: cudnn_benchmark: true applies to CUDA only; ignored on cpu" in out
    assert history[0]["step"] == 3


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="device_ids is for parallel: dp"):
        torchspec.train(write_spec(tmp_path, CNN2D, out="out", extra="  device_ids: [0, 1]\n"), quiet=True)
    with pytest.raises(SpecError, match="parallel"):
        torchspec.train(write_spec(tmp_path, CNN2D, out="out", extra="  parallel: fsdp\n"), quiet=True)
