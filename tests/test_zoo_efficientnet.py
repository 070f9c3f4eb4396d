"""specs/efficientnet.yaml is torchvision's EfficientNet B0-B7 and specs/efficientnet_v2.yaml its
EfficientNetV2 S/M/L, every variant checked on the meta device (no memory, no arithmetic: B7 has
66M parameters, V2-L 118M): the same state_dict keys and shapes in the same order, the same layers
with the same settings (BatchNorm's eps and momentum, stochastic depth's p, dropout's p, kernels,
strides, groups), ``check``'s parameter count, and the input at the variant's weights' crop.

b0 and b1 are also run on real numbers against torchvision in eval() and train()
(tests/test_zoo_mobile.py), and a small EfficientNetV2 (its table set with ``--set vars.setting``:
fused and plain MBConv, with and without expansion and residual) against torchvision's EfficientNet
class built from the same table.
"""

from __future__ import annotations

import re
from functools import partial

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.efficientnet import EfficientNet, FusedMBConvConfig, MBConvConfig
from zoo import SPECS

import torchspec
from torchspec import infer_shapes, load_spec
from torchspec.builder import build_from_report

# (spec, variant): torchvision's constructor of the variant's name
VARIANTS = [("efficientnet.yaml", f"efficientnet_b{i}") for i in range(8)] + [
    ("efficientnet_v2.yaml", f"efficientnet_v2_{size}") for size in "sml"
]


def _setting(module: nn.Module) -> tuple[str, str]:
    """What a leaf layer computes: its class and settings (in-place or not changes no result)."""
    if type(module).__name__ == "StochasticDepth":  # torchvision.ops' has no extra_repr
        return "StochasticDepth", f"p={module.p}, mode={module.mode}"
    return type(module).__name__, re.sub(r"(, )?inplace=(True|False)", "", module.extra_repr())


@pytest.mark.parametrize(("spec", "variant"), VARIANTS, ids=[v for _, v in VARIANTS])
def test_variant_is_torchvisions_model(spec: str, variant: str) -> None:
    with torch.device("meta"):
        ref = getattr(torchvision.models, variant)(weights=None)
    spec = load_spec(SPECS / spec, variant=variant)
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
    weights = getattr(torchvision.models, f"EfficientNet_{variant.split('_', 1)[1].upper()}_Weights")
    crop = weights.DEFAULT.transforms().crop_size
    assert list(spec.input_shape) == [3, *crop * 2]


# block, expansion, kernel, stride, channels in and out, blocks: each kind of block with and without
# its expansion (fused t = 1 is one convolution) and with and without the residual branch
TINY_V2 = [
    ["fused_mbconv", 1, 3, 1, 16, 16, 2],
    ["fused_mbconv", 4, 3, 2, 16, 24, 2],
    ["fused_mbconv", 4, 3, 2, 24, 32, 1],
    ["mbconv", 4, 3, 2, 32, 48, 2],
    ["mbconv", 6, 5, 1, 48, 56, 1],
    ["mbconv", 6, 3, 2, 56, 64, 2],
]


def test_v2_blocks_compute_what_torchvisions_compute() -> None:
    config = {"fused_mbconv": FusedMBConvConfig, "mbconv": MBConvConfig}
    torch.manual_seed(0)
    ref = EfficientNet(
        [config[kind](*row) for kind, *row in TINY_V2], dropout=0.2, num_classes=10, last_channel=1280,
        norm_layer=partial(nn.BatchNorm2d, eps=1e-3),
    )  # fmt: skip
    sets = [f"vars.setting={TINY_V2}".replace("'", ""), "vars.classes=10", "input=[3, 32, 32]"]
    spec = load_spec(SPECS / "efficientnet_v2.yaml", overrides=sets)
    assert infer_shapes(spec).params == sum(p.numel() for p in ref.parameters())
    model = torchspec.build(spec)
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for mode in ("eval", "train"):
        outputs = []
        for net in (model, ref):
            getattr(net, mode)()
            torch.manual_seed(7)  # in train(): the same dropout and stochastic-depth draws
            with torch.no_grad():
                outputs.append(net(x.clone()))
        torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.state_dict(), ref.state_dict(), atol=1e-5, rtol=1e-5)
