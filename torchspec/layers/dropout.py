"""Dropout: Dropout, Dropout1d/2d/3d (whole channels), AlphaDropout and FeatureAlphaDropout (SELU's
self-normalising forms). Shapes pass through; in eval() each returns its input itself."""

from __future__ import annotations

from typing import Literal

from torchspec.layers.activation import _Elementwise
from torchspec.layers.base import register
from torchspec.layers.fields import Bool, Probability

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"]


class _Dropout(_Elementwise):
    aliases_input = True  # in eval mode dropout returns its input tensor itself
    p: Probability = 0.5
    inplace: Bool = False


@register
class Dropout(_Dropout):
    type: Literal["Dropout"] = "Dropout"


@register
class Dropout1d(_Dropout):
    """Zeroes whole channels of (C, L) samples."""

    type: Literal["Dropout1d"] = "Dropout1d"
    sample_ranks = (2,)
    sample_layout = "(C, L)"


@register
class Dropout2d(_Dropout):
    type: Literal["Dropout2d"] = "Dropout2d"
    sample_ranks = (3,)
    sample_layout = "(C, H, W)"


@register
class Dropout3d(_Dropout):
    type: Literal["Dropout3d"] = "Dropout3d"
    sample_ranks = (4,)
    sample_layout = "(C, D, H, W)"


@register
class AlphaDropout(_Dropout):
    """Keeps the mean and variance of SELU activations (use it with SELU)."""

    type: Literal["AlphaDropout"] = "AlphaDropout"


@register
class FeatureAlphaDropout(_Dropout):
    """AlphaDropout of whole channels: (C, *) samples."""

    type: Literal["FeatureAlphaDropout"] = "FeatureAlphaDropout"
