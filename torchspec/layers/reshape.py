"""Layers that change the layout: Flatten, Unflatten, Upsample (and UpsamplingNearest2d,
UpsamplingBilinear2d), ChannelShuffle."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, checked_dim, prod, register
from torchspec.layers.fields import INT64_MAX, Bool, Dim, PosInt


def normalize_dim(dim: int, rank: int, field: str = "dim", incoming: str = "{incoming}") -> int:
    """``dim`` in [0, rank) for a rank with the batch; out of range is a ShapeError like torch's."""
    if not -rank <= dim < rank:
        raise ShapeError(
            f"{field} {dim} is out of range for {incoming} (rank {rank} with the batch); "
            f"use a value in [{-rank}, {rank - 1}]",
            field=field,
            hints=["dimensions count the batch dimension (0), as in torch; negative ones count from the end"],
        )
    return dim % rank


@register
class Flatten(Layer):
    """Merges dims ``start_dim..end_dim``; the default keeps the batch dimension (start_dim=1)."""

    type: Literal["Flatten"] = "Flatten"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input = True  # a view where it can be
    start_dim: Dim = 1
    end_dim: Dim = -1

    def infer(self, shape: Shape) -> Inferred:
        start = normalize_dim(self.start_dim, len(shape), "start_dim")
        end = normalize_dim(self.end_dim, len(shape), "end_dim")
        if start > end:
            raise ShapeError(
                f"start_dim {self.start_dim} comes after end_dim {self.end_dim} for {{incoming}}",
                field="start_dim",
            )
        merged = checked_dim(prod(shape[start : end + 1]), "the flattened dimension")
        return Inferred((*shape[:start], merged, *shape[end + 1 :]))


UnflattenItem = Annotated[int, Field(strict=True, ge=-1, le=INT64_MAX)]


@register
class Unflatten(Layer):
    """Splits ``dim`` into ``unflattened_size`` (one entry may be -1, inferred)."""

    type: Literal["Unflatten"] = "Unflatten"
    reads = "any"  # a view or tensor op: integer ids pass through as they are
    aliases_input = True  # a view
    positional: ClassVar[tuple[str, ...]] = ("dim", "unflattened_size")

    dim: Dim
    unflattened_size: Annotated[list[UnflattenItem], Field(min_length=1, max_length=8)]

    @field_validator("unflattened_size")
    @classmethod
    def _one_unknown(cls, value: list[int]) -> list[int]:
        if value.count(-1) > 1 or 0 in value:
            raise PydanticCustomError(
                "unflattened_size",
                "unflattened_size takes positive sizes and at most one -1, found {found}",
                {"found": value},
            )
        return value

    def infer(self, shape: Shape) -> Inferred:
        dim = normalize_dim(self.dim, len(shape), "dim")
        sizes = list(self.unflattened_size)
        known = prod([s for s in sizes if s != -1])
        if -1 in sizes:
            if shape[dim] % known:
                raise ShapeError(
                    f"unflattened_size {sizes} cannot split dimension {dim} of size {shape[dim]} "
                    f"in {{incoming}}: {shape[dim]} is not a multiple of {known}",
                    field="unflattened_size",
                )
            sizes[sizes.index(-1)] = shape[dim] // known
        elif known != shape[dim]:
            raise ShapeError(
                f"unflattened_size {sizes} has {known} elements but dimension {dim} of "
                f"{{incoming}} has {shape[dim]}; the product must match",
                field="unflattened_size",
            )
        return Inferred((*shape[:dim], *sizes, *shape[dim + 1 :]))


_MODE_RANKS = {"linear": (3,), "bilinear": (4,), "bicubic": (4,), "trilinear": (5,)}


@register
class Upsample(Layer):
    """Resizes the spatial dims to ``size`` or by ``scale_factor`` (floor(L * scale))."""

    type: Literal["Upsample"] = "Upsample"
    sample_ranks = (2, 3, 4)
    sample_layout = "(C, L), (C, H, W) or (C, D, H, W)"

    size: PosInt | Annotated[list[PosInt], Field(min_length=1, max_length=3)] | None = None
    scale_factor: (
        Annotated[float, Field(gt=0, allow_inf_nan=False)]
        | Annotated[
            list[Annotated[float, Field(gt=0, allow_inf_nan=False)]],
            Field(min_length=1, max_length=3),
        ]
        | None
    ) = None
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact", "area"] = (
        "nearest"
    )
    align_corners: Bool | None = None
    recompute_scale_factor: Bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Upsample:
        if (self.size is None) == (self.scale_factor is None):
            raise PydanticCustomError("upsample_size", "Upsample needs exactly one of size and scale_factor")
        return self

    @field_validator("recompute_scale_factor")
    @classmethod
    def _scale_only(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and info.data.get("size") is not None:
            raise PydanticCustomError(
                "recompute_scale_factor",
                "recompute_scale_factor: true only applies to scale_factor, not to an explicit "
                "size; remove it",
            )
        return value

    @field_validator("align_corners")
    @classmethod
    def _interpolating_only(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("mode") not in _MODE_RANKS:
            raise PydanticCustomError(
                "align_corners",
                "align_corners can only be set with mode linear, bilinear, bicubic or trilinear",
            )
        return value

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        spatial = shape[2:]
        ranks = _MODE_RANKS.get(self.mode)
        if ranks and len(shape) not in ranks:
            raise ShapeError(
                f"mode {self.mode!r} needs {ranks[0] - 2} spatial dimension(s) but {{incoming}} "
                f"has {len(spatial)}",
                field="mode",
            )
        wanted = self.size if self.size is not None else self.scale_factor
        field = "size" if self.size is not None else "scale_factor"
        if isinstance(wanted, list) and len(wanted) != len(spatial):
            raise ShapeError(
                f"{field} has {len(wanted)} entries but {{incoming}} has {len(spatial)} spatial "
                f"dimension(s); give one per spatial dimension or a single value",
                field=field,
            )
        per = wanted if isinstance(wanted, list) else [wanted] * len(spatial)
        if self.size is not None:
            out = [int(v) for v in per]  # type: ignore[arg-type]
        else:
            out = [math.floor(length * float(f)) for length, f in zip(spatial, per)]  # type: ignore[arg-type]
        if any(o < 1 for o in out):
            raise ShapeError(
                f"scale_factor {wanted} shrinks {{incoming}} to {out}; use a larger scale_factor",
                field=field,
            )
        return Inferred((*shape[:2], *(checked_dim(o, "output") for o in out)))


_Scale = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Upsampling2d(Layer):
    """torch's fixed-mode Upsample of (C, H, W) samples: exactly one of size and scale_factor."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["size"]}, {"required": ["scale_factor"]}]}
    )
    mode: ClassVar[str]
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"

    size: PosInt | Annotated[list[PosInt], Field(min_length=2, max_length=2)] | None = None
    scale_factor: _Scale | Annotated[list[_Scale], Field(min_length=2, max_length=2)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _Upsampling2d:
        if (self.size is None) == (self.scale_factor is None):
            raise PydanticCustomError(
                "upsample_size",
                "{type} needs exactly one of size and scale_factor",
                {"type": self.type_name()},
            )
        return self

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        given = {k: getattr(self, k) for k in ("size", "scale_factor") if getattr(self, k) is not None}
        return Upsample.model_validate({"mode": self.mode, **given}).infer(shape)


@register
class UpsamplingNearest2d(_Upsampling2d):
    type: Literal["UpsamplingNearest2d"] = "UpsamplingNearest2d"
    mode = "nearest"


@register
class UpsamplingBilinear2d(_Upsampling2d):
    """Bilinear with align_corners=True."""

    type: Literal["UpsamplingBilinear2d"] = "UpsamplingBilinear2d"
    mode = "bilinear"


@register
class ChannelShuffle(Layer):
    """Interleaves the channels of ``groups`` groups (ShuffleNet): [N, C, *] keeps its shape."""

    type: Literal["ChannelShuffle"] = "ChannelShuffle"
    positional: ClassVar[tuple[str, ...]] = ("groups",)
    groups: PosInt

    def infer(self, shape: Shape) -> Inferred:
        if len(shape) < 3:
            raise ShapeError(
                "ChannelShuffle needs [N, C, *] input with at least one dimension after the channels; "
                "got {incoming}",
                hints=["put it after a convolution, whose output is [N, C, H, W]"],
            )
        if shape[1] % self.groups:
            raise ShapeError(
                f"{shape[1]} channels of {{incoming}} do not split into groups={self.groups}; "
                f"use a groups value that divides {shape[1]}",
                field="groups",
            )
        return Inferred(shape)
