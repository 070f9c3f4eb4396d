"""specs/convnext.yaml and specs/vit.yaml are torchvision's ConvNeXt and ViT (see tests/zoo.py for
what "is" means). Both hold learned tensors that are not layers (type: Parameter): ConvNeXt's
per-block layer_scale, ViT's class_token and encoder.pos_embedding, whose keys are torchvision's.
Their initialisation hides most of the network (layer scale 1e-6, a zero head and class token),
so torchvision's weights are perturbed before the comparison. Both have stochastic depth or
dropout: eval() only."""

from __future__ import annotations

import pytest
from zoo import assert_reproduces


@pytest.mark.parametrize("variant", ["convnext_tiny"])
def test_convnext_spec_is_torchvisions_convnext(variant: str) -> None:
    assert_reproduces(
        "convnext.yaml",
        f"torchvision.models:{variant}",
        (3, 64, 64),
        variant=variant,
        overrides=["input=[3, 64, 64]"],
        train_too=False,
        perturb=0.05,
    )


@pytest.mark.parametrize("variant", ["vit_b_16", "vit_b_32"])
def test_vit_spec_is_torchvisions_vit(variant: str) -> None:
    # ViT's position embedding is sized for its image: 224 x 224, as torchvision's default
    assert_reproduces(
        "vit.yaml",
        f"torchvision.models:{variant}",
        (3, 224, 224),
        variant=variant,
        train_too=False,
        perturb=0.05,
    )
