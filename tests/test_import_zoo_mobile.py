"""torchspec import on torchvision's mobile models: MobileNetV2/V3 (squeeze-excitation), EfficientNet-B0
(stochastic depth) and SqueezeNet (Fire concatenation). As tests/test_import_zoo_cnn.py: the written
spec loads torchvision's state_dict strictly and computes its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from import_check import reproduce

M = torchvision.models
CASES: list[tuple[str, Any, dict[str, Any], tuple[int, ...]]] = [
    ("mobilenet_v2", M.mobilenet_v2, {"num_classes": 10}, (3, 32, 32)),
    ("mobilenet_v3_small", M.mobilenet_v3_small, {"num_classes": 10}, (3, 32, 32)),
    ("efficientnet_b0", M.efficientnet_b0, {"num_classes": 10}, (3, 32, 32)),
    ("squeezenet1_1", M.squeezenet1_1, {"num_classes": 10}, (3, 32, 32)),
]


@pytest.mark.parametrize(("name", "factory", "kwargs", "sample"), CASES, ids=[c[0] for c in CASES])
def test_import_reproduces_torchvision(
    name: str, factory: Any, kwargs: dict[str, Any], sample: tuple[int, ...], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    reproduce(factory(**kwargs), sample, tmp_path, name=name)
