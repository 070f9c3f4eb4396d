"""torchspec import on ShuffleNetV2 (channel shuffle: views computed from sizes), ConvNeXt (layer
scale: a learned tensor, LayerNorm2d, Permute) and ViT (class token and position embedding: learned
tensors, attention, x[:, 0]). As tests/test_import_zoo_cnn.py: the written spec loads torchvision's
state_dict strictly and computes its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from import_check import reproduce
from torchvision.models.vision_transformer import VisionTransformer

M = torchvision.models
SMALL_VIT = {
    "image_size": 32,
    "patch_size": 8,
    "num_layers": 2,
    "num_heads": 4,
    "hidden_dim": 32,
    "mlp_dim": 64,
}
CASES: list[tuple[str, Any, dict[str, Any], tuple[int, ...]]] = [
    ("shufflenet_v2_x1_0", M.shufflenet_v2_x1_0, {"num_classes": 10}, (3, 32, 32)),
    ("convnext_tiny", M.convnext_tiny, {"num_classes": 10}, (3, 32, 32)),
    ("vit_small", VisionTransformer, SMALL_VIT, (3, 32, 32)),  # vit_b_16's code, smaller sizes
]


@pytest.mark.parametrize(("name", "factory", "kwargs", "sample"), CASES, ids=[c[0] for c in CASES])
def test_import_reproduces_torchvision(
    name: str, factory: Any, kwargs: dict[str, Any], sample: tuple[int, ...], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    data = reproduce(factory(**kwargs), sample, tmp_path, name=name)
    if name.startswith("shufflenet"):  # each of the 4 + 8 + 4 units' view/transpose/view
        assert _types(data["layers"]).count("ChannelShuffle") == 16


def _types(layers: list[dict[str, Any]]) -> list[str]:
    found = []
    for layer in layers:
        found += _types(layer["layers"]) if "layers" in layer else [layer["type"]]
    return found


def test_vit_b_16_keys_and_learned_tensors(tmp_path: Path) -> None:
    """vit_b_16 itself (86M parameters): checked and built on the meta device, its keys and shapes
    torchvision's; class_token and encoder.pos_embedding are Parameter entries where torchvision
    holds them."""
    data = reproduce(M.vit_b_16(image_size=32), (3, 32, 32), tmp_path, outputs=False)
    top = {layer.get("name"): layer for layer in data["layers"]}
    assert top["class_token"] == {"name": "class_token", "type": "Parameter", "shape": [1, 1, 768]}
    encoder = {layer.get("name"): layer for layer in top["encoder"]["layers"]}
    assert encoder["pos_embedding"]["shape"] == [1, 5, 768]  # 4 patches and the class token
