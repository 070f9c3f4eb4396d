"""specs/convnext.yaml and specs/vit.yaml are torchvision's ConvNeXt and ViT (see tests/zoo.py for
what "is" means). Both hold learned tensors that are not layers (type: Parameter): ConvNeXt's
per-block layer_scale, ViT's class_token and encoder.pos_embedding, whose keys are torchvision's.
Their initialisation hides most of the network (layer scale 1e-6, a zero head and class token),
so torchvision's weights are perturbed before the comparison. Both have stochastic depth or
dropout: eval() only."""

from __future__ import annotations

import pytest
import torch
from zoo import SPECS, assert_reproduces

from torchspec import infer_shapes, load_spec


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


VARIANTS = [
    ("convnext.yaml", "convnext_tiny"),
    ("convnext.yaml", "convnext_small"),
    ("convnext.yaml", "convnext_base"),
    ("vit.yaml", "vit_b_16"),
    ("vit.yaml", "vit_b_32"),
]


@pytest.mark.parametrize(("spec", "variant"), VARIANTS)
def test_every_variant_has_torchvisions_state_and_stochastic_depth(spec: str, variant: str) -> None:
    """Each variant's analytic state_dict (keys, order, shapes), parameter count and stochastic
    depth schedule are torchvision's, against the model built on the meta device (no memory)."""
    import torchvision
    from torchvision.ops import StochasticDepth

    with torch.device("meta"):
        ref = getattr(torchvision.models, variant)()
    report = infer_shapes(load_spec(SPECS / spec, variant=variant))
    theirs = {key: tuple(tensor.shape) for key, tensor in ref.state_dict().items()}
    assert list(report.state_shapes().items()) == list(theirs.items())
    assert report.params == sum(p.numel() for p in ref.parameters())
    ours = [row.args["p"] for row in report.rows if row.type == "StochasticDepth"]
    assert ours == [m.p for m in ref.modules() if isinstance(m, StochasticDepth)]
