"""The mobile zoo specs are torchvision's models (see tests/zoo.py for what "is" means): MobileNetV2,
MobileNetV3 small/large (squeeze-excitation, hardswish), EfficientNet-B0 and B1 (stochastic depth;
every variant, and EfficientNetV2, in tests/test_zoo_efficientnet.py) and SqueezeNet 1.0/1.1
(Fire concatenation).

Each has dropout (and EfficientNet stochastic depth), so ``assert_reproduces`` compares eval()
only; the train() test below compares them in training too, drawing the same random numbers for
both models: same outputs prove the same dropout and stochastic-depth probabilities and modes,
and the same BatchNorm running statistics prove the same momentum.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from zoo import SPECS, assert_reproduces, reference

import torchspec

SAMPLE = (3, 32, 32)  # every model here still ends on a 1x1 (or larger) map
# (spec, variant, torchvision factory, its kwargs, --set overrides beyond the input)
CASES: list[tuple[str, str | None, str, dict[str, Any], list[str]]] = [
    ("mobilenet_v2.yaml", None, "mobilenet_v2", {}, []),
    ("mobilenet_v2.yaml", None, "mobilenet_v2", {"width_mult": 0.5}, ["vars.width=0.5"]),
    ("mobilenet_v3.yaml", "mobilenet_v3_small", "mobilenet_v3_small", {}, []),
    ("mobilenet_v3.yaml", "mobilenet_v3_large", "mobilenet_v3_large", {}, []),
    ("efficientnet.yaml", None, "efficientnet_b0", {}, []),
    ("efficientnet.yaml", "efficientnet_b1", "efficientnet_b1", {}, []),
    ("squeezenet.yaml", "squeezenet1_1", "squeezenet1_1", {}, []),
    ("squeezenet.yaml", "squeezenet1_0", "squeezenet1_0", {}, []),
]
IDS = [f"{c[2]}{'-' + c[4][0] if c[4] else ''}" for c in CASES]


@pytest.mark.parametrize(("spec", "variant", "factory", "kwargs", "sets"), CASES, ids=IDS)
def test_spec_is_torchvisions_model(
    spec: str, variant: str | None, factory: str, kwargs: dict[str, Any], sets: list[str]
) -> None:
    overrides = [f"input={list(SAMPLE)}", *sets]
    assert_reproduces(
        spec, f"torchvision.models:{factory}", SAMPLE, variant=variant, overrides=overrides,
        train_too=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "variant", "factory"),
    [(c[0], c[1], c[2]) for c in CASES if not c[4] and c[2] != "mobilenet_v3_large"],
)
def test_train_mode_with_the_same_random_draws(spec: str, variant: str | None, factory: str) -> None:
    ref = reference(f"torchvision.models:{factory}")
    model = torchspec.build(SPECS / spec, variant=variant, overrides=[f"input={list(SAMPLE)}"])
    model.load_state_dict(ref.state_dict(), strict=True)
    model.train(), ref.train()
    x = torch.randn(2, *SAMPLE, generator=torch.Generator().manual_seed(1))
    outputs = []
    for net in (model, ref):
        torch.manual_seed(7)  # the same dropout masks and stochastic-depth draws, in the same order
        outputs.append(net(x.clone()))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.state_dict(), ref.state_dict(), atol=1e-5, rtol=1e-5)
    # the draws matter: another seed gives other outputs (dropout is live in training)
    torch.manual_seed(8)
    assert not torch.allclose(model(x), outputs[1])
