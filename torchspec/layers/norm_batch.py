"""Normalisation by channel statistics: BatchNorm1d/2d/3d and SyncBatchNorm (the batch's, with
running statistics by default), InstanceNorm1d/2d/3d (each sample's own). Shapes pass through
unchanged. The other norms: :mod:`torchspec.layers.norm`."""

from __future__ import annotations

from typing import ClassVar, Literal

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, prod, register
from torchspec.layers.fields import Bool, PosFloat, PosInt, Probability


class _BatchNorm(Layer):
    positional = ("num_features",)
    statistics: ClassVar[str] = "the batch's statistics per channel"
    bigger: ClassVar[str] = "use a larger batch"

    @staticmethod
    def values_per_statistic(shape: Shape) -> int:
        """How many values each mean/variance is computed over: every sample's, per channel."""
        return prod(shape) // shape[1]

    @staticmethod
    def one_value(shape: Shape) -> str:
        return f"with a batch of {shape[0]}, 1 value per channel"

    num_features: PosInt | None = None
    eps: PosFloat = 1e-5
    momentum: Probability | None = 0.1
    affine: Bool = True
    track_running_stats: Bool = True

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        c = shape[1]
        if self.affine or self.track_running_stats:  # else torch never looks at num_features
            self.check_given("num_features", self.num_features, c, "channels")
        features = c if self.num_features is None else self.num_features
        if not self.track_running_stats and self.values_per_statistic(shape) == 1:
            # without running statistics torch always normalises with the input's own statistics
            raise ShapeError(
                f"track_running_stats=false normalises with {self.statistics}, which needs more "
                f"than 1 value each, but the incoming shape is {{incoming}} {self.one_value(shape)}; "
                f"{self.bigger} or track_running_stats: true",
                field="track_running_stats",
            )
        params = 2 * c if self.affine else 0
        # running_mean, running_var and the num_batches_tracked counter
        buffers = 2 * c + 1 if self.track_running_stats else 0
        tracked = 1 if self.track_running_stats else 0
        state: dict[str, Shape] = {"weight": (features,), "bias": (features,)} if self.affine else {}
        if self.track_running_stats:
            state.update(running_mean=(features,), running_var=(features,), num_batches_tracked=())
        return Inferred(
            shape,
            params=params,
            buffers=buffers,
            int64_buffers=tracked,
            args={"num_features": features},
            state=state,
        )


@register
class BatchNorm1d(_BatchNorm):
    type: Literal["BatchNorm1d"] = "BatchNorm1d"
    sample_ranks = (1, 2)
    sample_layout = "(C) or (C, L)"


@register
class BatchNorm2d(_BatchNorm):
    type: Literal["BatchNorm2d"] = "BatchNorm2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"


@register
class BatchNorm3d(_BatchNorm):
    type: Literal["BatchNorm3d"] = "BatchNorm3d"
    sample_ranks = (4,)
    sample_layout = "(C, D, H, W)"


@register
class SyncBatchNorm(_BatchNorm):
    """BatchNorm of any (C, *) samples whose batch statistics are reduced across the processes of
    a DDP run (``train.parallel: ddp``); in one process it is BatchNorm."""

    type: Literal["SyncBatchNorm"] = "SyncBatchNorm"
    sample_layout = "(C, *)"


class _InstanceNorm(_BatchNorm):
    """Normalises each sample's channels over their own spatial values (torch's defaults: no affine
    weights, no running statistics)."""

    statistics: ClassVar[str] = "each sample's own statistics per channel"
    bigger: ClassVar[str] = "use a larger spatial size"
    affine: Bool = False
    track_running_stats: Bool = False

    @staticmethod
    def values_per_statistic(shape: Shape) -> int:
        return prod(shape[2:])

    @staticmethod
    def one_value(shape: Shape) -> str:
        return "with 1 value per channel in each sample"


@register
class InstanceNorm1d(_InstanceNorm):
    type: Literal["InstanceNorm1d"] = "InstanceNorm1d"
    sample_ranks = (2,)
    sample_layout = "(C, L)"


@register
class InstanceNorm2d(_InstanceNorm):
    type: Literal["InstanceNorm2d"] = "InstanceNorm2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"


@register
class InstanceNorm3d(_InstanceNorm):
    type: Literal["InstanceNorm3d"] = "InstanceNorm3d"
    sample_ranks = (4,)
    sample_layout = "(C, D, H, W)"
