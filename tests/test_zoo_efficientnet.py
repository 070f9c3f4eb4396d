"""specs/efficientnet.yaml is torchvision's EfficientNet B0-B7, every variant, checked on the meta
device (no memory, no arithmetic: B7 has 66M parameters): the same state_dict keys and shapes in the
same order, the same layers with the same settings (BatchNorm's eps and momentum, stochastic depth's
p, dropout's p, kernels, strides, groups), and ``check``'s parameter count. b0 and b1 are also run
on real numbers against torchvision in eval() and train() (tests/test_zoo_mobile.py).
"""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn
from zoo import SPECS

from torchspec import infer_shapes, load_spec
from torchspec.builder import build_from_report

VARIANTS = [f"efficientnet_b{i}" for i in range(8)]


def _setting(module: nn.Module) -> tuple[str, str]:
    """What a leaf layer computes: its class and settings (in-place or not changes no result)."""
    if type(module).__name__ == "StochasticDepth":  # torchvision.ops' has no extra_repr
        return "StochasticDepth", f"p={module.p}, mode={module.mode}"
    return type(module).__name__, re.sub(r"(, )?inplace=(True|False)", "", module.extra_repr())


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_is_torchvisions_model(variant: str) -> None:
    with torch.device("meta"):
        ref = getattr(torchvision.models, variant)(weights=None)
    spec = load_spec(SPECS / "efficientnet.yaml", variant=variant)
    report = infer_shapes(spec)
    model = build_from_report(report, device="meta")
    theirs, ours = ref.state_dict(), model.state_dict()
    assert list(ours) == list(theirs)
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    mine = dict(model.named_modules())
    compared = 0
    for name, layer in ref.named_modules():
        if next(layer.children(), None) is not None:
            continue
        if name not in mine:
            # torchvision makes a StochasticDepth in every MBConv and uses it only on a residual
            # branch; the spec makes it only there
            parent = ref.get_submodule(name.rpartition(".")[0])
            assert name.endswith(".stochastic_depth") and not parent.use_res_connect, name
            continue
        assert _setting(mine[name]) == _setting(layer), name
        compared += 1
    assert compared > 100
    assert report.params == sum(p.numel() for p in ref.parameters())
    # the input is the crop torchvision's weights for the variant are evaluated at
    crop = getattr(torchvision.models, f"EfficientNet_B{variant[-1]}_Weights").DEFAULT.transforms().crop_size
    assert list(spec.input_shape) == [3, *crop * 2]
