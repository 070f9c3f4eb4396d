"""specs/resnet_blocks.yaml is torchvision's ResNet (see tests/zoo.py for what "is" means)."""

from __future__ import annotations

import pytest
from zoo import assert_reproduces


@pytest.mark.parametrize("variant", ["resnet18", "resnet34"])
def test_resnet_blocks_spec_is_torchvisions_resnet(variant: str) -> None:
    assert_reproduces(
        "resnet_blocks.yaml",
        f"torchvision.models:{variant}",
        (3, 64, 64),
        variant=variant,
        overrides=["input=[3, 64, 64]"],
        train_too=True,
    )
