"""Causal attention: torch's attention classes with the causal mask passed in forward.

torch takes a mask as a forward argument (``attn_mask``, ``src_mask``, ``tgt_mask`` with the
``is_causal`` hint), which a spec's layer, made of constructor arguments, cannot carry. A layer
with ``causal: true`` becomes one of these subclasses: the same constructor and state_dict keys as
torch's class, and a forward that builds ``nn.Transformer.generate_square_subsequent_mask(L)``
(0 on and below the diagonal, -inf above: position t attends to positions 0 .. t) for the actual
sequence length L (dimension 1 with ``batch_first``, else 0) and passes it with ``is_causal=True``.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = [
    "CausalMultiheadAttention",
    "CausalTransformer",
    "CausalTransformerDecoder",
    "CausalTransformerDecoderLayer",
    "CausalTransformerEncoder",
    "CausalTransformerEncoderLayer",
    "causal_mask",
]


def causal_mask(x: Tensor, batch_first: bool) -> Tensor:
    """The ``[L, L]`` float mask for the sequence ``x`` (``[N, L, E]`` or ``[L, N, E]``)."""
    length = x.shape[1] if batch_first else x.shape[0]
    return nn.Transformer.generate_square_subsequent_mask(length, device=x.device, dtype=x.dtype)


class CausalMultiheadAttention(nn.MultiheadAttention):
    """Self-attention where position t reads keys 0 .. t: the query and key have one length."""

    causal = True

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor | None]:  # type: ignore[override]
        mask = causal_mask(query, self.batch_first)
        return super().forward(query, key, value, attn_mask=mask, is_causal=True)


class CausalTransformerEncoderLayer(nn.TransformerEncoderLayer):
    causal = True

    def forward(self, src: Tensor) -> Tensor:  # type: ignore[override]
        mask = causal_mask(src, self.self_attn.batch_first)
        return super().forward(src, src_mask=mask, is_causal=True)


class CausalTransformerEncoder(nn.TransformerEncoder):
    """Every layer of the stack gets the mask (the stack passes it on)."""

    causal = True

    def forward(self, src: Tensor) -> Tensor:  # type: ignore[override]
        mask = causal_mask(src, self.layers[0].self_attn.batch_first)
        return super().forward(src, mask=mask, is_causal=True)


class CausalTransformerDecoderLayer(nn.TransformerDecoderLayer):
    """Causal self-attention on tgt; the cross-attention reads all of memory."""

    causal = True

    def forward(self, tgt: Tensor, memory: Tensor) -> Tensor:  # type: ignore[override]
        mask = causal_mask(tgt, self.self_attn.batch_first)
        return super().forward(tgt, memory, tgt_mask=mask, tgt_is_causal=True)


class CausalTransformerDecoder(nn.TransformerDecoder):
    causal = True

    def forward(self, tgt: Tensor, memory: Tensor) -> Tensor:  # type: ignore[override]
        mask = causal_mask(tgt, self.layers[0].self_attn.batch_first)
        return super().forward(tgt, memory, tgt_mask=mask, tgt_is_causal=True)


class CausalTransformer(nn.Transformer):
    """The decoder's self-attention on tgt is causal; the encoder reads all of src."""

    causal = True

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:  # type: ignore[override]
        mask = causal_mask(tgt, self.batch_first)
        return super().forward(src, tgt, tgt_mask=mask, tgt_is_causal=True)
