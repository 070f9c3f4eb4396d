"""``synthetic-sequence``: a built-in, download-free token-sequence task, deterministic by seed.

Each sample is ``T`` int64 token ids (``T`` from the spec's ``input: {shape: [T], dtype: int64}``):

* token 0 is padding, tokens ``1 .. classes`` are markers, ``classes + 1 .. vocab - 1`` filler;
* every marker occurs exactly once, at random positions, among random filler tokens;
* the label is which marker comes first (``k - 1`` for marker ``k``): with ``classes: 2``, "does
  token 1 occur before token 2?".

No position, window or token count gives the answer away: the model has to remember what it saw
first over the whole sequence (an LSTM's state, attention with positions). With ``min_length`` < T
each sequence has a random length in ``[min_length, T]`` and ends in padding (``padding_idx: 0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["SequenceError", "synthetic_sequence"]


class SequenceError(ValueError):
    """A setting of the source that cannot make sequences; ``key`` names it (None: the source)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def synthetic_sequence(
    shape: Sequence[int],
    ids: tuple[int, int] | None,
    samples: int,
    classes: int = 2,
    vocab: int | None = None,
    min_length: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x [samples, T] int64, y [samples] int64)``; ``ids`` is the spec's declared id range."""
    if ids is None:
        raise SequenceError(
            "synthetic-sequence makes token ids; the spec's input is float32: declare it as "
            f"input: {{shape: [{shape[-1]}], dtype: int64, high: VOCAB}}"
        )
    if len(shape) != 1:
        raise SequenceError(f"synthetic-sequence makes sequences [T]; the spec's input is {list(shape)}")
    (length,) = shape
    low, high = ids
    vocab = high if vocab is None else vocab
    if low > 0 or vocab > high:
        raise SequenceError(
            f"vocab {vocab} makes ids 0 .. {vocab - 1}, outside the input's declared range "
            f"{low} .. {high - 1}",
            "vocab",
        )
    if vocab < classes + 2:
        raise SequenceError(
            f"vocab {vocab} is too small for {classes} classes: ids are padding 0, markers 1 .. "
            f"{classes} and at least one filler token (vocab >= {classes + 2})",
            "vocab",
        )
    shortest = length if min_length is None else min_length
    if not classes <= shortest <= length:
        raise SequenceError(
            f"min_length {shortest} must be within {classes} (room for the {classes} markers) .. "
            f"{length} (the input's length)",
            "min_length" if min_length is not None else None,
        )
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, length + 1, samples)  # (N,)
    x = rng.integers(classes + 1, vocab, (samples, length))  # filler everywhere
    x[np.arange(length)[None, :] >= lengths[:, None]] = 0  # padding after each sequence's end
    # each marker at its own random position within the sequence: the `classes` smallest of random
    # keys (padding positions keyed last) are distinct positions before the sequence's end
    keys = rng.random((samples, length))
    keys[np.arange(length)[None, :] >= lengths[:, None]] = 2.0  # padding positions sort last
    positions = np.argsort(keys, axis=1)[:, :classes]  # (N, classes), distinct, within the length
    rows = np.arange(samples)[:, None]
    x[rows, positions] = np.arange(1, classes + 1)[None, :]
    labels = positions.argmin(axis=1)  # the marker placed earliest
    return torch.from_numpy(x.astype(np.int64)), torch.from_numpy(labels.astype(np.int64))
