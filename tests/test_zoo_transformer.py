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

# ConvNeXt at 64 x 64 (its layers fit any size); ViT's position embedding is sized for 224 x 224
REPRODUCED = [
    ("convnext.yaml", "convnext_tiny", 64),
    ("vit.yaml", "vit_b_16", 224),
    ("vit.yaml", "vit_b_32", 224),
]


@pytest.mark.parametrize(("spec", "variant", "size"), REPRODUCED)
def test_spec_is_torchvisions_model(spec: str, variant: str, size: int) -> None:
    assert_reproduces(
        spec,
        f"torchvision.models:{variant}",
        (3, size, size),
        variant=variant,
        overrides=[f"input=[3, {size}, {size}]"] if size != 224 else [],
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
