"""Command-line flags: a bad value is a usage error that names the flag the user typed.

``--device`` is turned into ``--set train.device=...`` internally by train/eval/bench; its
mistakes must speak of ``--device`` with the allowed forms, never of a --set nobody typed.
"""

from __future__ import annotations

import argparse

import pytest

from torchspec.cli import make_parser
from torchspec.cli.args import device_name, int_at_least

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
def test_a_bad_device_is_a_usage_error_naming_device(
    command: str, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args([command, *COMMANDS[command], "--device", device])
    assert info.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the usage lines
    assert err.startswith(
        f"torchspec {command}: error: argument --device: expected auto, cpu, cuda, cuda:N or mps"
    )
    assert "--set" not in err and "train.device" not in err
    assert err.endswith(
        "found an empty value"
        if not device.strip()
        else f"found {device!r}"
        + ("; meta holds no data (shapes are verified on meta already)" if device == "meta" else "")
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("device", GOOD_DEVICES)
def test_every_allowed_device_form_parses(command: str, device: str) -> None:
    args = make_parser().parse_args([command, *COMMANDS[command], "--device", device])
    assert args.device == device.strip()


def test_the_device_flag_help_lists_the_forms() -> None:
    for command in COMMANDS:
        text = make_parser()._subparsers._group_actions[0].choices[command].format_help()  # type: ignore[union-attr]
        assert "auto, cpu, cuda, cuda:N, mps" in " ".join(text.split())


@pytest.mark.parametrize("text", ["9" * 5000, "99999999999999999999", "9223372036854775808", "-" + "9" * 100])
def test_integer_flags_refuse_huge_values_without_valueerror(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        int_at_least(1)(text)
    assert len(str(info.value)) < 120


def test_device_name_returns_the_stripped_name() -> None:
    assert device_name(" cuda:1 ") == "cuda:1"
