"""The ``train`` section of a spec as pydantic models. Torch-free: ``torchspec check`` validates it.

Losses, optimizers and schedulers are discriminated unions tagged by ``type`` (torch's class name,
fields are torch's keyword arguments with torch's defaults); data sources are tagged by ``source``.
A bare string stands for ``{type: name}`` (``{source: name}`` for data), as for layers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from torchspec.layers.fields import NonNegInt, PosFloat, PosInt
from torchspec.training.folder_config import FrameFolder, ImageFolder, VideoFolder
from torchspec.training.tuning_config import EmaConfig, Init, ParamGroup, Pattern

__all__ = [
    "DATA_SOURCES",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DataSource",
    "Loss",
    "Optimizer",
    "Scheduler",
    "TrainConfig",
    "higher_is_better",
]

Float = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Reduction = Literal["mean", "sum", "none"]
SEED_MAX = 2**63 - 1  # torch.manual_seed and numpy take it; train.seed feeds both


def _seed_in_range(value: int) -> int:
    if not 0 <= value <= SEED_MAX:
        raise ValueError(f"seed must be in [0, 2**63 - 1] (0 .. {SEED_MAX})")
    return value


Seed = Annotated[int, AfterValidator(_seed_in_range), Field(description="an integer in [0, 2**63 - 1]")]
Betas = Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- data sources -----------------------------------------------------------------------------------
class _Source(_Strict):
    val_fraction: Fraction | None = Field(
        default=None, description="share held out for validation (default 0.2 without train.val)"
    )


class SyntheticMotion(_Source):
    """Clips of a bright square moving in one of ``classes`` directions; label = direction."""

    source: Literal["synthetic-motion"]
    samples: PosInt = 2048
    classes: Literal[4, 8] = 4
    noise: NonNegFloat = Field(default=0.3, description="std of the background noise")
    seed: Seed | None = Field(default=None, description="default: train.seed")


class SyntheticSequence(_Source):
    """Token sequences with marker tokens 1 .. classes once each; label = which marker comes first."""

    source: Literal["synthetic-sequence"]
    samples: PosInt = 2048
    classes: Annotated[int, Field(strict=True, ge=2, le=64)] = 2
    vocab: PosInt | None = Field(
        default=None, description="token ids 0 .. vocab - 1 (default: the input's high)"
    )
    min_length: PosInt | None = Field(
        default=None,
        description="shortest sequence (default: the input's length); shorter ones end in padding 0s",
    )
    seed: Seed | None = Field(default=None, description="default: train.seed")


class RandomData(_Source):
    """Random inputs of the spec's input shape; random labels or regression targets."""

    source: Literal["random"]
    samples: PosInt = 256
    task: Literal["classification", "regression"] = "classification"
    classes: PosInt = 10
    scale: float = Field(default=1.0, description="multiplies the inputs (.inf makes a NaN run)")
    seed: Seed | None = None


class Digits(_Source):
    """scikit-learn's bundled 8x8 digits as (1, 8, 8) images in [0, 1] (needs torchspec[digits])."""

    source: Literal["digits"]


class Tensors(_Source):
    """Arrays from .npz (keys), .npy (memory-mapped) or .pt files (weights_only loading).

    Relative paths are relative to the spec file's folder.
    """

    source: Literal["tensors"]
    inputs: Annotated[str, Field(min_length=1, description=".npz, .npy or .pt file of inputs")]
    targets: str | None = Field(default=None, description="a separate .npy/.pt file of targets")
    inputs_key: str = "x"
    targets_key: str = "y"


class Torchvision(_Source):
    """A torchvision dataset by name (needs torchspec[vision])."""

    source: Literal["torchvision"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    root: str = Field(default="data", description="relative to the spec's folder")
    download: bool = False
    train: bool = True
    transform: list[Literal["ToTensor", "Grayscale", "Normalize"]] = ["ToTensor"]


class PythonData(_Source):
    """The user's own Dataset class, imported only by train/eval/predict."""

    source: Literal["python"]
    target: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
            description='"package.module:ClassName"',
        ),
    ]
    args: dict[str, Any] = {}


DATA_SOURCES: dict[str, type[_Source]] = {
    "synthetic-motion": SyntheticMotion,
    "synthetic-sequence": SyntheticSequence,
    "random": RandomData,
    "digits": Digits,
    "tensors": Tensors,
    "torchvision": Torchvision,
    "python": PythonData,
    "video-folder": VideoFolder,  # type: ignore[dict-item]
    "frame-folder": FrameFolder,  # type: ignore[dict-item]
    "image-folder": ImageFolder,  # type: ignore[dict-item]
}


def _bare(tag: str) -> Any:
    return BeforeValidator(lambda value: {tag: value} if isinstance(value, str) else value)


DataSource = Annotated[
    Union[  # noqa: UP007
        SyntheticMotion,
        SyntheticSequence,
        RandomData,
        Digits,
        Tensors,
        Torchvision,
        PythonData,
        VideoFolder,
        FrameFolder,
        ImageFolder,
    ],
    Field(discriminator="source"),
    _bare("source"),
]


# -- losses -----------------------------------------------------------------------------------------
class _Loss(_Strict):
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
    _bare("type"),
]


# -- optimizers -------------------------------------------------------------------------------------
class SGD(_Strict):
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


class Adam(_Strict):
    type: Literal["Adam"]
    lr: PosFloat = 1e-3
    betas: Betas = [0.9, 0.999]
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    amsgrad: bool = False


class AdamW(_Strict):
    type: Literal["AdamW"]
    lr: PosFloat = 1e-3
    betas: Betas = [0.9, 0.999]
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 1e-2
    amsgrad: bool = False


class RMSprop(_Strict):
    type: Literal["RMSprop"]
    lr: PosFloat = 1e-2
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.99
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    momentum: NonNegFloat = 0.0
    centered: bool = False


OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}
Optimizer = Annotated[
    Union[SGD, Adam, AdamW, RMSprop], Field(discriminator="type"), _bare("type")  # noqa: UP007
]


# -- schedulers (stepped once per epoch, except OneCycleLR: once per step) -------------------------
class StepLR(_Strict):
    type: Literal["StepLR"]
    step_size: PosInt
    gamma: PosFloat = 0.1


class MultiStepLR(_Strict):
    type: Literal["MultiStepLR"]
    milestones: Annotated[list[PosInt], Field(min_length=1)]
    gamma: PosFloat = 0.1


class ExponentialLR(_Strict):
    type: Literal["ExponentialLR"]
    gamma: PosFloat


class CosineAnnealingLR(_Strict):
    type: Literal["CosineAnnealingLR"]
    T_max: PosInt
    eta_min: NonNegFloat = 0.0


class LinearLR(_Strict):
    type: Literal["LinearLR"]
    start_factor: Annotated[float, Field(gt=0, le=1)] = 1.0 / 3
    end_factor: Annotated[float, Field(ge=0, le=1)] = 1.0
    total_iters: PosInt = 5


class OneCycleLR(_Strict):
    """Stepped every batch; ``total_steps`` defaults to epochs x batches per epoch."""

    type: Literal["OneCycleLR"]
    max_lr: PosFloat
    total_steps: PosInt | None = None
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: PosFloat = 25.0
    final_div_factor: PosFloat = 1e4
    three_phase: bool = False


class ReduceLROnPlateau(_Strict):
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
    _bare("type"),
]


def higher_is_better(monitor: str) -> bool:
    """Accuracies and F1 grow as the model improves; losses and errors shrink."""
    return monitor.endswith(("accuracy", "f1"))


# -- the section ------------------------------------------------------------------------------------
class TrainConfig(_Strict):
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
