"""Command-line flags: a bad value is a usage error that names the flag the user typed.

``--device`` is turned into ``--set train.device=...`` internally by train/eval/bench; its
mistakes must speak of ``--device`` with the allowed forms, never of a --set nobody typed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from torchspec.cli import main, make_parser
from torchspec.cli.args import device_problem, int_at_least

COMMANDS = {
    "train": ["spec.yaml"],
    "eval": ["spec.yaml", "--checkpoint", "x.ckpt"],
    "bench": ["spec.yaml"],
    "build": ["spec.yaml"],
    "predict": ["model.safetensors", "x.npy"],
}
BAD_DEVICES = [
    "tpu",
    "",
    " ",
    "TPU",
    "cuda:",
    "cuda:x",
    "cuda:-1",
    "cuda:1:2",
    "cpu0",
    "meta",
    "gpu",
    "cuda 0",
]
GOOD_DEVICES = ["auto", "cpu", "cuda", "cuda:0", "cuda:7", "mps", " cpu "]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("device", BAD_DEVICES)
def test_a_bad_device_is_an_error_naming_device(
    command: str, device: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Exit 1 (a device error, as the README's exit codes say), before any file is read."""
    code = main(
        [command, *[str(tmp_path / a) if "." in a else a for a in COMMANDS[command]], "--device", device]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    found = "an empty value" if not device.strip() else repr(device)
    meta = "; meta holds no data (shapes are verified on meta already)" if device == "meta" else ""
    assert captured.err == (
        f"torchspec {command}: error: argument --device: expected auto, cpu, cuda, cuda:N or mps, "
        f"found {found}{meta}\n"
    )


def test_train_device_is_not_blamed_on_a_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\ninput: [4]\nlayers: [ReLU]\ntrain:\n  data: {source: random, samples: 4}\n")
    assert main(["train", str(spec), "--device", "tpu"]) == 1
    err = capsys.readouterr().err
    assert "--set" not in err and "train.device" not in err and "argument --device" in err


@pytest.mark.parametrize("device", GOOD_DEVICES)
def test_every_allowed_device_form_passes(device: str) -> None:
    assert device_problem(device) is None


def test_the_device_flag_help_lists_the_forms() -> None:
    for command in COMMANDS:
        text = make_parser()._subparsers._group_actions[0].choices[command].format_help()  # type: ignore[union-attr]
        assert "auto, cpu, cuda, cuda:N, mps" in " ".join(text.split())


@pytest.mark.parametrize("text", ["9" * 5000, "99999999999999999999", "9223372036854775808", "-" + "9" * 100])
def test_integer_flags_refuse_huge_values_without_valueerror(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        int_at_least(1)(text)
    assert len(str(info.value)) < 120
