"""torchspec's own modules: the merge and tensor layers torch.nn has none of, and learned tensors
(and, from :mod:`torchspec.nn_attention`, the causal attention classes ``causal: true`` builds).

Each is the torch side of the layer of the same name in :mod:`torchspec.layers.merge` (its
``torch_home``): constructor keywords are the layer's fields, with the same defaults. They hold
no parameters, trace cleanly with torch.fx, and work with torch.compile and torch.export.
Dimensions count the batch dimension, as in torch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from torchspec.nn_attention import (
    CausalMultiheadAttention,
    CausalTransformer,
    CausalTransformerDecoder,
    CausalTransformerDecoderLayer,
    CausalTransformerEncoder,
    CausalTransformerEncoderLayer,
)

__all__ = [
    "Add",
    "CausalMultiheadAttention",
    "CausalTransformer",
    "CausalTransformerDecoder",
    "CausalTransformerDecoderLayer",
    "CausalTransformerEncoder",
    "CausalTransformerEncoderLayer",
    "Chunk",
    "Concat",
    "ExpandBatch",
    "LayerNorm2d",
    "Mean",
    "Mul",
    "Parameter",
    "Permute",
    "PositionalEncoding",
    "Reshape",
    "Select",
    "Split",
    "StochasticDepth",
]


def _dims(value: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


class Add(nn.Module):
    """``x + y + ...`` with torch's broadcasting."""

    def forward(self, *xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """``x * y * ...`` with torch's broadcasting."""

    def forward(self, *xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    """``torch.cat(inputs, dim)``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: Tensor) -> Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Mean(nn.Module):
    """``x.mean(dim, keepdim)``."""

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = _dims(dim)
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, keepdim={self.keepdim}"


class Permute(nn.Module):
    """``x.permute(dims)``."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = _dims(dims)

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Reshape(nn.Module):
    """``x.reshape(N, *shape)``: ``shape`` is per sample; the batch dimension is kept. With
    ``include_batch`` it is the whole shape, ``x.reshape(*shape)`` (fold time into the batch)."""

    def __init__(self, shape: tuple[int, ...], include_batch: bool = False) -> None:
        super().__init__()
        self.shape = _dims(shape)
        self.include_batch = include_batch

    def forward(self, x: Tensor) -> Tensor:
        if self.include_batch:
            return x.reshape(*self.shape)
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}" + (", include_batch=True" if self.include_batch else "")


class PositionalEncoding(nn.Module):
    """``x + pe[:T]`` for ``x`` of ``[N, T, d_model]``: where each token is, added to what it is.

    ``pe`` is the sinusoidal table of "Attention Is All You Need" (a buffer), or with ``learned``
    a parameter (initialised N(0, 0.02), as GPT-2's). ``T`` may be at most ``max_len``.
    """

    def __init__(self, d_model: int, max_len: int, learned: bool = False) -> None:
        super().__init__()
        self.max_len = max_len
        if learned:
            self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
            rate = torch.exp(
                torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
            )
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(position * rate)
            table[:, 1::2] = torch.cos(position * rate[: d_model // 2])
            self.register_buffer("pe", table)

    def forward(self, x: Tensor) -> Tensor:
        table: Tensor = self.weight if hasattr(self, "weight") else self.pe  # type: ignore[assignment]
        if x.shape[1] > self.max_len or x.shape[-1] != table.shape[1]:  # never a silent broadcast
            raise ValueError(
                f"PositionalEncoding({table.shape[1]}, max_len={self.max_len}) cannot take {list(x.shape)}"
            )
        return x + table[: x.shape[1]]


class Chunk(nn.Module):
    """``x.chunk(chunks, dim)``: a tuple of pieces."""

    def __init__(self, chunks: int, dim: int = 1) -> None:
        super().__init__()
        self.chunks = chunks
        self.dim = dim

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return x.chunk(self.chunks, dim=self.dim)

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, dim={self.dim}"


class Split(nn.Module):
    """``torch.split(x, split_size_or_sections, dim)``: a tuple of pieces."""

    def __init__(self, split_size_or_sections: int | tuple[int, ...], dim: int = 1) -> None:
        super().__init__()
        split = split_size_or_sections
        self.split_size_or_sections = split if isinstance(split, int) else list(split)
        self.dim = dim

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return torch.split(x, self.split_size_or_sections, dim=self.dim)

    def extra_repr(self) -> str:
        return f"split_size_or_sections={self.split_size_or_sections}, dim={self.dim}"


class Select(nn.Module):
    """``x.select(dim, index)``: the dimension is removed."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x.select(self.dim, self.index)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, index={self.index}"


class StochasticDepth(nn.Module):
    """Randomly drops the residual branch it ends (torchvision.ops.StochasticDepth's rule).

    In training a sample's (``row``) or the batch's (``batch``) tensor is zeroed with probability
    ``p`` and survivors are scaled by 1 / (1 - p); in eval(), or with p = 0, the input is returned.
    """

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        if mode not in ("row", "batch"):
            raise ValueError(f"mode must be 'row' or 'batch', not {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        # [N, 1, 1, ...] for row mode: one keep/drop decision per sample; [1, ...] for batch mode
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise = noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


def Parameter(  # named as the spec's layer type, which it builds
    shape: tuple[int, ...],
    init: str = "zeros",
    value: float | None = None,
    mean: float = 0.0,
    std: float = 1.0,
) -> nn.Parameter:
    """The ``Parameter`` layer's tensor: ``nn.Parameter`` of ``shape``, zeros, ones, ``value``
    everywhere (constant) or drawn from N(mean, std) (normal, from torch's global generator)."""
    data = torch.empty(shape)
    if init == "normal":
        data.normal_(mean, std)
    elif init in ("zeros", "ones", "constant"):
        data.fill_({"zeros": 0.0, "ones": 1.0}.get(init, value if value is not None else 0.0))
    else:
        raise ValueError(f"init must be zeros, ones, constant or normal, not {init!r}")
    return nn.Parameter(data)


class ExpandBatch(nn.Module):
    """``x.expand(like.shape[0], *x.shape[1:])``: a learned ``[1, ...]`` tensor over ``like``'s batch."""

    def forward(self, x: Tensor, like: Tensor) -> Tensor:
        return x.expand(like.shape[0], *x.shape[1:])


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W): torchvision's ConvNeXt LayerNorm2d, the same
    computation (channels last, ``F.layer_norm``, back), so its outputs agree bit for bit."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
