"""The data sources of the ``train`` section (``data``, ``val``, ``test``), tagged by ``source``.

Torch-free: ``torchspec check`` validates them; :mod:`.sources` loads them. A bare string stands
for ``{source: name}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from torchspec.layers.fields import PosInt
from torchspec.training.config_fields import Fraction, NonNegFloat, Seed, Strict, bare
from torchspec.training.folder_config import FrameFolder, ImageFolder, VideoFolder

__all__ = [
    "DATA_SOURCES",
    "DataSource",
    "Digits",
    "PythonData",
    "RandomData",
    "SyntheticMotion",
    "SyntheticSequence",
    "Tensors",
    "Torchvision",
]


class _Source(Strict):
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
    bare("source"),
]
