"""Sparse layers: Embedding and EmbeddingBag, the layers that read integer ids (token ids).

Their input is int64 ids (``reads = "index"``, see :mod:`torchspec.dtype_flow`): a spec declares
it with ``input: {shape: [T], dtype: int64, high: VOCAB}``, and the declared range is checked
against ``num_embeddings``. Neither has an inferable argument: the vocabulary is not a shape.

* Embedding: ids of any shape ``[N, *]`` -> ``[N, *, embedding_dim]``.
* EmbeddingBag: bags of a fixed length, ids ``[N, L]`` -> ``[N, embedding_dim]``, reduced by
  ``mode`` (sum, mean, max). torch's 1-D form with ``offsets`` (bags of different lengths) and
  ``per_sample_weights`` are forward arguments a spec's single input cannot carry: pad the bags to
  one length with ``padding_idx`` instead (padded ids are left out of the reduction).

Both hold one weight ``[num_embeddings, embedding_dim]``; MACs are 0 (a lookup multiplies nothing;
EmbeddingBag's sums are adds).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, register
from torchspec.layers.fields import Bool, PosFloat, PosInt

__all__ = ["Embedding", "EmbeddingBag"]


class _Table(Layer):
    positional: ClassVar[tuple[str, ...]] = ("num_embeddings", "embedding_dim")
    reads = "index"

    num_embeddings: PosInt
    embedding_dim: PosInt
    padding_idx: int | None = None
    max_norm: PosFloat | None = None
    norm_type: PosFloat = 2.0
    scale_grad_by_freq: Bool = False
    sparse: Bool = False

    @model_validator(mode="after")
    def _padding_in_range(self) -> _Table:
        n, idx = self.num_embeddings, self.padding_idx
        if idx is not None and not -n <= idx < n:
            raise PydanticCustomError(
                "padding_idx",
                "padding_idx ({idx}) must be an id of the table: within -{n} .. {last} "
                "(num_embeddings is {n})",
                {"idx": idx, "n": n, "last": n - 1},
            )
        return self

    def index_bound(self, inferred: Inferred) -> int | None:
        return self.num_embeddings

    def _inferred(self, out: Shape) -> Inferred:
        weight = (self.num_embeddings, self.embedding_dim)
        return Inferred(out, params=weight[0] * weight[1], state={"weight": weight})


@register
class Embedding(_Table):
    """A lookup table: int64 ids ``[N, *]`` -> vectors ``[N, *, embedding_dim]``."""

    type: Literal["Embedding"] = "Embedding"

    def infer(self, shape: Shape) -> Inferred:
        return self._inferred((*shape, self.embedding_dim))


@register
class EmbeddingBag(_Table):
    """Bags of ids ``[N, L]`` -> one vector per bag ``[N, embedding_dim]`` (sum, mean or max)."""

    type: Literal["EmbeddingBag"] = "EmbeddingBag"
    sample_ranks = (1,)
    sample_layout = "(L) ids per bag"

    mode: Literal["sum", "mean", "max"] = "mean"
    include_last_offset: Bool = False

    @model_validator(mode="after")
    def _max_is_dense(self) -> EmbeddingBag:
        for field in ("sparse", "scale_grad_by_freq"):
            if self.mode == "max" and getattr(self, field):
                raise PydanticCustomError(
                    "max_mode",
                    "mode 'max' does not support {field}: true (torch refuses it); "
                    "use mode 'sum' or 'mean', or {field}: false",
                    {"field": field},
                )
        return self

    def infer(self, shape: Shape) -> Inferred:
        self.check_rank(shape)
        return self._inferred((shape[0], self.embedding_dim))
