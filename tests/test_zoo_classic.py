"""specs/densenet.yaml, googlenet.yaml and shufflenet_v2.yaml are torchvision's models (see
tests/zoo.py for what "is" means): dense concatenation, Inception branches, channel split and shuffle.

Small inputs keep the file fast: every model here reduces 32x32 to 1x1 and 64x64 to 2x2 before its
global pooling. One torch thread: on a shared 2-core machine it is several times faster.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.shufflenetv2 import channel_shuffle
from zoo import assert_reproduces

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("variant", "size", "drop_rate"),
    [
        ("densenet121", 64, 0.0),
        ("densenet161", 32, 0.0),  # another growth rate (48) and stem width (96)
        ("densenet121", 32, 0.2),  # dropout on each dense layer's new features (eval only)
    ],
)
def test_densenet_spec_is_torchvisions_densenet(variant: str, size: int, drop_rate: float) -> None:
    # drop_rate is 0 by default: no dropout, so train() must agree too
    assert_reproduces(
        "densenet.yaml",
        f"torchvision.models:{variant}",
        (3, size, size),
        variant=variant,
        overrides=[f"input=[3, {size}, {size}]", f"vars.drop_rate={drop_rate}"],
        train_too=drop_rate == 0,
        drop_rate=drop_rate,
    )


@pytest.mark.parametrize("dropout", [0.2, 0.0])
def test_googlenet_spec_is_torchvisions_googlenet_without_aux_heads(dropout: float) -> None:
    # with aux_logits=False and transform_input left at its default (False without weights), the
    # forward is the trunk alone; without its dropout before fc, train() agrees too
    assert_reproduces(
        "googlenet.yaml",
        "torchvision.models:googlenet",
        (3, 64, 64),
        overrides=["input=[3, 64, 64]", f"vars.dropout={dropout}"],
        train_too=dropout == 0,
        aux_logits=False,
        init_weights=True,
        dropout=dropout,
    )


@pytest.mark.parametrize("variant", ["x0_5", "x1_0", "x1_5", "x2_0"])
def test_shufflenet_spec_is_torchvisions_shufflenet_v2(variant: str) -> None:
    assert_reproduces(
        "shufflenet_v2.yaml",
        f"torchvision.models:shufflenet_v2_{variant}",
        (3, 64, 64),
        variant=variant,
        overrides=["input=[3, 64, 64]"],
        train_too=True,
    )


@pytest.mark.parametrize(
    ("shape", "groups"),
    [((2, 4, 3, 3), 2), ((2, 116, 8, 8), 2), ((1, 12, 5, 7), 3), ((3, 6, 2, 2), 6), ((2, 8, 1, 1), 4)],
)
def test_channel_shuffle_is_torchvisions_channel_shuffle(shape: tuple[int, ...], groups: int) -> None:
    # the layer the shufflenet spec uses, against the function torchvision's units call: bitwise
    x = torch.randn(*shape)
    assert torch.equal(torch.nn.ChannelShuffle(groups)(x), channel_shuffle(x, groups))
