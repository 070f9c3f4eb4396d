"""The JSON Schema covers the train section: every key, bare names where the validator takes them,
and the mistakes the validator rejects fail the schema too."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from torchspec.schema import spec_schema
from torchspec.training.config import LOSSES, OPTIMIZERS, SCHEDULERS, TrainConfig

BASE: dict[str, Any] = {
    "name": "t",
    "input": [4],
    "layers": [{"type": "Linear", "out_features": 2}],
    "train": {"data": "random"},
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(spec_schema())


def _with(**train: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["train"].update(train)
    return data


def _both(validator: Draft202012Validator, data: dict[str, Any]) -> tuple[bool, bool]:
    """(the schema accepts it, the validator accepts it)."""
    try:
        TrainConfig.model_validate(data["train"])
        valid = True
    except Exception:
        valid = False
    return validator.is_valid(data), valid


def test_every_train_key_is_in_the_schema() -> None:
    train = spec_schema()["$defs"]["train.section"]
    assert set(train["properties"]) == set(TrainConfig.model_fields)
    assert train["additionalProperties"] is False


GOOD = [
    {"loss": name} for name in LOSSES
] + [{"optimizer": name} for name in OPTIMIZERS] + [
    {"scheduler": {"type": name, **({"T_max": 3} if name == "CosineAnnealingLR" else {})}}
    for name in SCHEDULERS if name in ("CosineAnnealingLR", "LinearLR", "ReduceLROnPlateau")
] + [
    {"data": name} for name in ("random", "digits", "synthetic-motion")
] + [
    {"scheduler": {"type": "StepLR", "step_size": 2}},
    {"scheduler": {"type": "OneCycleLR", "max_lr": 0.1}},
    {"init": "w.safetensors", "freeze": ["conv1", "layer1.*"]},
    {"init": {"path": "w.pt", "new": ["fc"], "strict": False}},
    {"param_groups": [{"params": ["fc"], "lr": 0.01}], "ema": {"decay": 0.99}},
    {"accumulate_steps": 4, "grad_clip_value": 1.0, "patience": 3, "min_delta": 0.01},
    {"monitor": "val_macro_f1"},
    {"test": {"source": "tensors", "inputs": "t.npz"}, "val": "random"},
]  # fmt: skip
BAD = [
    {"epochs": 0},
    {"epochs": "10"},
    {"batchsize": 32},
    {"loss": "CrossEntropy"},
    {"optimizer": {"type": "Adam", "lr": -1}},
    {"optimizer": {"type": "Adam", "momentum": 0.9}},
    {"scheduler": {"type": "StepLR"}},
    {"data": {"source": "tensors"}},
    {"init": {"new": ["fc"]}},
    {"freeze": "conv1"},
    {"param_groups": [{"lr": 0.1}]},
    {"ema": {"decay": 1.5}},
    {"accumulate_steps": 0},
    {"monitor": "val_f1"},
    {"precision": "fp8"},
]


@pytest.mark.parametrize("train", GOOD, ids=str)
def test_good_train_sections_pass_both(validator: Draft202012Validator, train: dict[str, Any]) -> None:
    assert _both(validator, _with(**train)) == (True, True)


@pytest.mark.parametrize("train", BAD, ids=str)
def test_bad_train_sections_fail_both(validator: Draft202012Validator, train: dict[str, Any]) -> None:
    assert _both(validator, _with(**train)) == (False, False)
