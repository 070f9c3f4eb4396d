"""torchspec's own stateful or training-dependent modules, written out for ``--to python``.

Each is the class of :mod:`torchspec.nn` of the same name (same constructor keywords, same
state_dict), importing only torch: an exported file defines the ones it uses. The parameterless
merges and tensor ops need no class in a forward written out (they are torch expressions there);
Reshape, Permute, Mean and Select are here for the ``nn.Sequential`` containers that hold one.
"""

from __future__ import annotations

__all__ = ["HELPERS"]

HELPERS: dict[str, str] = {
    "Reshape": '''
class Reshape(nn.Module):
    """x.reshape(N, *shape), or x.reshape(*shape) with include_batch."""

    def __init__(self, shape: tuple[int, ...], include_batch: bool = False) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.include_batch = include_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.include_batch:
            return x.reshape(*self.shape)
        return x.reshape(x.shape[0], *self.shape)
''',
    "Permute": '''
class Permute(nn.Module):
    """x.permute(dims)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)
''',
    "Mean": '''
class Mean(nn.Module):
    """x.mean(dim, keepdim)."""

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = (dim,) if isinstance(dim, int) else tuple(dim)
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)
''',
    "Select": '''
class Select(nn.Module):
    """x.select(dim, index)."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)
''',
    "StochasticDepth": '''
class StochasticDepth(nn.Module):
    """Drops a residual branch in training (torchvision's rule); eval(): identity."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [1] * x.ndim  # mode "batch": one draw for the whole batch
        if self.mode == "row":  # one per sample
            size[0] = x.shape[0]
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise = noise.div_(survival)
        return x * noise
''',
    "PositionalEncoding": '''
class PositionalEncoding(nn.Module):
    """x + pe[:T] for x of (N, T, d_model): sinusoidal positions, or learned."""

    def __init__(self, d_model: int, max_len: int, learned: bool = False) -> None:
        super().__init__()
        self.max_len = max_len
        if learned:
            self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32)[:, None]
            steps = torch.arange(0, d_model, 2, dtype=torch.float32)
            rate = torch.exp(steps * (-9.210340371976184 / d_model))  # -log(10000) / d
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(position * rate)
            table[:, 1::2] = torch.cos(position * rate[: d_model // 2])
            self.register_buffer("pe", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        table = self.weight if hasattr(self, "weight") else self.pe
        return x + torch.narrow(table, 0, 0, x.shape[1])  # the first T positions
''',
    "LayerNorm2d": '''
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W), channels last and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)
''',
}

# causal: true (torchspec.nn_attention): torch's class, the mask built in forward for the actual
# length L (dim 1 with batch_first, else 0): 0 on and below the diagonal, -inf above
_CAUSAL = {  # name: (base, forward's inputs, the sequence, its batch_first, returns, the call)
    "CausalMultiheadAttention": (
        "MultiheadAttention",
        "query: torch.Tensor, key: torch.Tensor, value: torch.Tensor",
        "query",
        "self.batch_first",
        "tuple[torch.Tensor, torch.Tensor | None]",
        "query, key, value, attn_mask=mask, is_causal=True",
    ),
    "CausalTransformerEncoderLayer": (
        "TransformerEncoderLayer",
        "src: torch.Tensor",
        "src",
        "self.self_attn.batch_first",
        "torch.Tensor",
        "src, src_mask=mask, is_causal=True",
    ),
    "CausalTransformerEncoder": (
        "TransformerEncoder",
        "src: torch.Tensor",
        "src",
        "self.layers[0].self_attn.batch_first",
        "torch.Tensor",
        "src, mask=mask, is_causal=True",
    ),
    "CausalTransformerDecoderLayer": (
        "TransformerDecoderLayer",
        "tgt: torch.Tensor, memory: torch.Tensor",
        "tgt",
        "self.self_attn.batch_first",
        "torch.Tensor",
        "tgt, memory, tgt_mask=mask, tgt_is_causal=True",
    ),
    "CausalTransformerDecoder": (
        "TransformerDecoder",
        "tgt: torch.Tensor, memory: torch.Tensor",
        "tgt",
        "self.layers[0].self_attn.batch_first",
        "torch.Tensor",
        "tgt, memory, tgt_mask=mask, tgt_is_causal=True",
    ),
    "CausalTransformer": (
        "Transformer",
        "src: torch.Tensor, tgt: torch.Tensor",
        "tgt",
        "self.batch_first",
        "torch.Tensor",
        "src, tgt, tgt_mask=mask, tgt_is_causal=True",
    ),
}
for _name, (_base, _inputs, _x, _first, _returns, _call) in _CAUSAL.items():
    _def = f"    def forward(self, {_inputs}) -> {_returns}:"
    if len(_def) > 88:  # as ruff format writes it
        _def = f"    def forward(\n        self, {_inputs}\n    ) -> {_returns}:"
    HELPERS[_name] = f'''
class {_name}(nn.{_base}):
    """nn.{_base}, causal: position t attends to positions 0 .. t."""

{_def}
        length = {_x}.shape[1 if {_first} else 0]
        mask = nn.Transformer.generate_square_subsequent_mask(
            length, device={_x}.device, dtype={_x}.dtype
        )  # (L, L): 0 on and below the diagonal, -inf above
        return super().forward({_call})
'''
# Chunk and Split return tuples: inside an nn.Sequential they cannot occur (a tuple makes a graph)
