"""The ``train`` section of a spec as a pydantic model. Torch-free: ``torchspec check`` validates it.

Its parts live by topic: the data sources in :mod:`.data_config` (tagged by ``source``), losses,
optimizers and schedulers in :mod:`.optim_config` (tagged by ``type``: torch's class name, fields
are torch's keyword arguments with torch's defaults), the fine-tuning keys in :mod:`.tuning_config`.
A bare string stands for ``{type: name}`` (``{source: name}`` for data), as for layers. Every
name of those modules that code imports from here is re-exported.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from torchspec.layers.fields import NonNegInt, PosFloat, PosInt
from torchspec.training.config_fields import SEED_MAX, NonNegFloat, Seed, Strict
from torchspec.training.data_config import (
    DATA_SOURCES,
    DataSource,
    Digits,
    PythonData,
    RandomData,
    SyntheticMotion,
    SyntheticSequence,
    Tensors,
    Torchvision,
)
from torchspec.training.optim_config import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    OPTIMIZERS,
    SCHEDULERS,
    SGD,
    Adam,
    AdamW,
    BCEWithLogitsLoss,
    CosineAnnealingLR,
    CrossEntropyLoss,
    ExponentialLR,
    HuberLoss,
    L1Loss,
    LinearLR,
    Loss,
    MSELoss,
    MultiStepLR,
    NLLLoss,
    OneCycleLR,
    Optimizer,
    ReduceLROnPlateau,
    RMSprop,
    Scheduler,
    SmoothL1Loss,
    StepLR,
)
from torchspec.training.tuning_config import EmaConfig, Init, ParamGroup, Pattern

__all__ = [
    "CLASSIFICATION_LOSSES",
    "DATA_SOURCES",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULERS",
    "SEED_MAX",
    "SGD",
    "Adam",
    "AdamW",
    "BCEWithLogitsLoss",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "DataSource",
    "Digits",
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
    "PythonData",
    "RMSprop",
    "RandomData",
    "ReduceLROnPlateau",
    "Scheduler",
    "Seed",
    "SmoothL1Loss",
    "StepLR",
    "SyntheticMotion",
    "SyntheticSequence",
    "Tensors",
    "Torchvision",
    "TrainConfig",
    "higher_is_better",
]


def higher_is_better(monitor: str) -> bool:
    """Accuracies and F1 grow as the model improves; losses and errors shrink."""
    return monitor.endswith(("accuracy", "f1"))


# -- the section ------------------------------------------------------------------------------------
class TrainConfig(Strict):
    """How to train the model: data, loader, loss, optimizer, schedule, device and outputs."""

    model_config = ConfigDict(extra="forbid", strict=True, title="train")

    data: DataSource
    val: DataSource | None = Field(default=None, description="a separate validation source")
    test: DataSource | None = Field(default=None, description="a test set: what `torchspec eval` scores")
    batch_size: PosInt = 32
    shuffle: bool = True
    num_workers: NonNegInt = 0
    pin_memory: bool | None = Field(default=None, description="default: on with CUDA")
    persistent_workers: bool = False
    prefetch_factor: PosInt | None = Field(
        default=None, description="batches each worker loads ahead (default: torch's 2; needs workers)"
    )
    drop_last: bool = False
    epochs: PosInt = 10
    loss: Loss = Field(default_factory=lambda: CrossEntropyLoss(type="CrossEntropyLoss"))
    optimizer: Optimizer = Field(default_factory=lambda: Adam(type="Adam"))
    scheduler: Scheduler | None = None
    warmup_steps: NonNegInt = Field(default=0, description="linear learning-rate warmup, in steps")
    grad_clip: PosFloat | None = Field(default=None, description="clip the gradient norm to this")
    grad_clip_value: PosFloat | None = Field(default=None, description="clip each gradient to ±this")
    accumulate_steps: PosInt = Field(default=1, description="batches summed into one optimizer step")
    ema: EmaConfig | None = Field(default=None, description="validate and save an EMA of the weights")
    device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="autocast dtype; fp16 adds a GradScaler and needs CUDA"
    )
    channels_last: bool = Field(
        default=False, description="channels_last (Conv2d nets) or channels_last_3d (Conv3d nets)"
    )
    compile: bool = Field(default=False, description="torch.compile the model")
    cudnn_benchmark: bool | None = Field(default=None, description="default: on with CUDA")
    parallel: Literal["none", "dp", "ddp"] = Field(
        default="none", description="dp: nn.DataParallel; ddp: DistributedDataParallel under torchrun"
    )
    device_ids: Annotated[list[NonNegInt], Field(min_length=1)] | None = Field(
        default=None, description="CUDA devices for parallel: dp (default: all)"
    )
    seed: Seed = 0
    output_dir: str | None = Field(
        default=None,
        description="default: runs/<spec name> in the working directory; relative: to the spec's folder",
    )
    log: list[Literal["csv", "tensorboard"]] = Field(
        default=["csv"], description="csv: metrics.csv; tensorboard: event files in tensorboard/"
    )
    checkpoint_every: NonNegInt = Field(default=0, description="also checkpoint every N steps")
    monitor: Literal[
        "val_loss", "val_accuracy", "val_top5_accuracy", "val_macro_f1", "val_mae", "val_rmse"
    ] = Field(default="val_loss", description="the metric that picks the best epoch (and early stopping)")
    patience: PosInt | None = Field(default=None, description="early stop: epochs without improvement")
    min_delta: NonNegFloat = Field(default=0.0, description="early stop: the least change that improves")
    init: Init | None = Field(default=None, description="start from these weights (fine-tuning)")
    freeze: list[Pattern] = Field(default=[], description="parameters that stay as they are")
    param_groups: list[ParamGroup] = Field(default=[], description="per-pattern lr / weight_decay")

    @model_validator(mode="after")
    def _checks(self) -> TrainConfig:
        if self.val is not None and self.data.val_fraction:
            raise ValueError("use data.val_fraction or a separate val source, not both")
        if self.num_workers == 0 and self.persistent_workers:
            raise ValueError("persistent_workers: true needs num_workers > 0")
        if self.num_workers == 0 and self.prefetch_factor is not None:
            raise ValueError("prefetch_factor needs num_workers > 0")
        regression = self.loss.type not in CLASSIFICATION_LOSSES and self.loss.type != "BCEWithLogitsLoss"
        if regression and self.monitor in ("val_accuracy", "val_top5_accuracy", "val_macro_f1"):
            raise ValueError(
                f"monitor: {self.monitor} needs a classification loss; use val_loss, val_mae or val_rmse"
            )
        if not regression and self.monitor in ("val_mae", "val_rmse"):
            raise ValueError(
                f"monitor: {self.monitor} is for regression; use val_loss, val_accuracy or val_macro_f1"
            )
        if self.device_ids is not None and self.parallel != "dp":
            raise ValueError("device_ids is for parallel: dp (ddp uses one device per local rank)")
        return self

    @property
    def val_fraction(self) -> float:
        if self.data.val_fraction is not None:
            return self.data.val_fraction
        return 0.0 if self.val is not None else 0.2

    @property
    def classification(self) -> bool:
        return self.loss.type in CLASSIFICATION_LOSSES or self.loss.type == "BCEWithLogitsLoss"
