"""torchspec import on torchvision's convolutional classics: ResNet, DenseNet, GoogLeNet, r3d_18.

Each model is imported from the torchvision original, the spec written and read back (checked and
built), torchvision's own state_dict loaded with strict=True and the outputs compared in eval()
(tests/import_check.py). Small inputs keep it quick; the structure does not depend on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from import_check import reproduce

CASES: list[tuple[str, Any, dict[str, Any], tuple[int, ...]]] = [
    ("resnet18", torchvision.models.resnet18, {}, (3, 32, 32)),
    ("resnet50", torchvision.models.resnet50, {"num_classes": 10}, (3, 32, 32)),
    ("densenet121", torchvision.models.densenet121, {"num_classes": 10}, (3, 32, 32)),
    ("googlenet", torchvision.models.googlenet, {"aux_logits": False, "init_weights": False}, (3, 32, 32)),
    ("r3d_18", torchvision.models.video.r3d_18, {"num_classes": 5}, (3, 4, 16, 16)),
]


@pytest.mark.parametrize(("name", "factory", "kwargs", "sample"), CASES, ids=[c[0] for c in CASES])
def test_import_reproduces_torchvision(
    name: str, factory: Any, kwargs: dict[str, Any], sample: tuple[int, ...], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    reproduce(factory(**kwargs), sample, tmp_path, name=name)


def test_resnet_blocks_are_nested_containers_with_a_shortcut(tmp_path: Path) -> None:
    """The residual add reads the block's input (`from: [bn2, input]`); the downsample branch
    reads the block's input too: wiring only where the container is not a plain chain."""
    data = reproduce(torchvision.models.resnet18(num_classes=4), (3, 32, 32), tmp_path, outputs=False)
    layer2 = next(layer for layer in data["layers"] if layer.get("name") == "layer2")
    block = layer2["layers"][0]["layers"]
    assert {"type": "Add", "from": ["bn2", "downsample"]} in block
    assert next(b for b in block if b.get("name") == "downsample")["from"] == "input"
    conv1 = data["layers"][0]
    assert "from" not in conv1 and "in_channels" not in conv1  # inferred, as one would write it
