"""What training minimises and how: the ``loss``, ``optimizer`` and ``scheduler`` of the ``train`` section.

Torch-free (``torchspec check`` validates them; :mod:`.objects` builds them). Each is a
discriminated union tagged by ``type``: torch's class name, fields are torch's keyword arguments
with torch's defaults. A bare string stands for ``{type: name}``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from torchspec.layers.fields import NonNegInt, PosFloat, PosInt
from torchspec.training.config_fields import NonNegFloat, Strict, bare

__all__ = [
    "CLASSIFICATION_LOSSES",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULERS",
    "SGD",
    "Adam",
    "AdamW",
    "BCEWithLogitsLoss",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "ExponentialLR",
    "HuberLoss",
    "L1Loss",
    "LinearLR",
    "Loss",
    "MSELoss",
    "MultiStepLR",
    "NLLLoss",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "Scheduler",
    "SmoothL1Loss",
    "StepLR",
]

Reduction = Literal["mean", "sum", "none"]
Betas = Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]


# -- losses -----------------------------------------------------------------------------------------
class _Loss(Strict):
    reduction: Reduction = "mean"


class CrossEntropyLoss(_Loss):
    type: Literal["CrossEntropyLoss"]
    label_smoothing: Annotated[float, Field(ge=0, le=1)] = 0.0
    ignore_index: int = -100


class NLLLoss(_Loss):
    type: Literal["NLLLoss"]
    ignore_index: int = -100


class MSELoss(_Loss):
    type: Literal["MSELoss"]


class L1Loss(_Loss):
    type: Literal["L1Loss"]


class SmoothL1Loss(_Loss):
    type: Literal["SmoothL1Loss"]
    beta: NonNegFloat = 1.0


class HuberLoss(_Loss):
    type: Literal["HuberLoss"]
    delta: PosFloat = 1.0


class BCEWithLogitsLoss(_Loss):
    type: Literal["BCEWithLogitsLoss"]


LOSSES = {c.model_fields["type"].annotation.__args__[0]: c for c in (  # type: ignore[union-attr]
    CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCEWithLogitsLoss
)}  # fmt: skip
CLASSIFICATION_LOSSES = frozenset({"CrossEntropyLoss", "NLLLoss"})

Loss = Annotated[
    Union[CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCEWithLogitsLoss],  # noqa: UP007
    Field(discriminator="type"),
    bare("type"),
]


# -- optimizers -------------------------------------------------------------------------------------
class SGD(Strict):
    type: Literal["SGD"]
    lr: PosFloat = 1e-3
    momentum: NonNegFloat = 0.0
    dampening: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov: true needs momentum > 0 and dampening: 0")
        return self


class Adam(Strict):
    type: Literal["Adam"]
    lr: PosFloat = 1e-3
    betas: Betas = [0.9, 0.999]
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    amsgrad: bool = False


class AdamW(Strict):
    type: Literal["AdamW"]
    lr: PosFloat = 1e-3
    betas: Betas = [0.9, 0.999]
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 1e-2
    amsgrad: bool = False


class RMSprop(Strict):
    type: Literal["RMSprop"]
    lr: PosFloat = 1e-2
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.99
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    momentum: NonNegFloat = 0.0
    centered: bool = False


OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}
Optimizer = Annotated[
    Union[SGD, Adam, AdamW, RMSprop], Field(discriminator="type"), bare("type")  # noqa: UP007
]


# -- schedulers (stepped once per epoch, except OneCycleLR: once per step) -------------------------
class StepLR(Strict):
    type: Literal["StepLR"]
    step_size: PosInt
    gamma: PosFloat = 0.1


class MultiStepLR(Strict):
    type: Literal["MultiStepLR"]
    milestones: Annotated[list[PosInt], Field(min_length=1)]
    gamma: PosFloat = 0.1


class ExponentialLR(Strict):
    type: Literal["ExponentialLR"]
    gamma: PosFloat


class CosineAnnealingLR(Strict):
    type: Literal["CosineAnnealingLR"]
    T_max: PosInt
    eta_min: NonNegFloat = 0.0


class LinearLR(Strict):
    type: Literal["LinearLR"]
    start_factor: Annotated[float, Field(gt=0, le=1)] = 1.0 / 3
    end_factor: Annotated[float, Field(ge=0, le=1)] = 1.0
    total_iters: PosInt = 5


class OneCycleLR(Strict):
    """Stepped every batch; ``total_steps`` defaults to epochs x batches per epoch."""

    type: Literal["OneCycleLR"]
    max_lr: PosFloat
    total_steps: PosInt | None = None
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: PosFloat = 25.0
    final_div_factor: PosFloat = 1e4
    three_phase: bool = False


class ReduceLROnPlateau(Strict):
    """Stepped after each validation with the monitored metric."""

    type: Literal["ReduceLROnPlateau"]
    mode: Literal["min", "max"] | None = Field(default=None, description="default: from monitor")
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: NonNegInt = 10
    threshold: NonNegFloat = 1e-4
    cooldown: NonNegInt = 0
    min_lr: NonNegFloat = 0.0


SCHEDULERS = {
    c.__name__: c
    for c in (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau)
}
Scheduler = Annotated[
    Union[StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau],  # noqa: UP007
    Field(discriminator="type"),
    bare("type"),
]
