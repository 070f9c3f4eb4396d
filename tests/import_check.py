"""The test of an import: the written spec checks, builds, loads the model's own state_dict strictly
and computes the model's outputs (eval mode, within 1e-5).

``reproduce(model, sample, tmp_path)`` imports ``model`` in process, writes the spec as YAML through
``torchspec.importing.write_spec`` (what the command writes), then reads that file back the way a
user would: ``torchspec.infer_shapes(load_spec(path))`` (the check) and ``torchspec.build``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import torchspec
from torchspec.builder import build_from_report
from torchspec.importing import import_model, write_spec


def reproduce(
    model: nn.Module, sample: Sequence[int], tmp_path: Path, *, outputs: bool = True, name: str = "imported"
) -> dict[str, Any]:
    """Import, write, check, build and compare; returns the spec data."""
    model.eval()
    with torch.no_grad():  # zero-initialised tensors (ViT's head, class token) would hide mistakes
        for tensor in model.parameters():
            if not tensor.any():
                tensor.normal_(0.0, 0.5)
    data = import_model(model, sample, name=name)
    path = tmp_path / f"{name}.yaml"
    write_spec(data, path, header="written by a test")
    report = torchspec.infer_shapes(torchspec.load_spec(path))  # `torchspec check` passes
    assert list(report.input[1:]) == list(sample)
    built = build_from_report(report, device=None if outputs else "meta")  # what `build` does
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()} == want
    if outputs:
        built.load_state_dict(model.state_dict(), strict=True)
        built.eval()
        torch.manual_seed(0)
        x = torch.randn(2, *sample)
        with torch.no_grad():
            expected, got = model(x), built(x)
        assert got.shape == expected.shape
        assert expected.abs().max() > 0  # not a degenerate comparison
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    return data
