"""Checkpoints: everything an exact resume needs, in a form ``torch.load(weights_only=True)`` reads.

A checkpoint is a dict of tensors and plain values: model, optimizer, scheduler and GradScaler
state, the position (epoch, batches done in it, global step), the metrics so far, and the RNG
states of Python, numpy, torch and CUDA. It is written atomically (:mod:`torchspec.fileio`): to a
unique temporary file in the same folder, flushed and fsynced, then renamed over the old one, so a
kill at any moment leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from torchspec.errors import Problem, SpecError
from torchspec.fileio import atomic_write

__all__ = [
    "FOREIGN_CHECKPOINT_HINTS",
    "FORMAT",
    "RESUME_FREE_KEYS",
    "RESUME_HINTS",
    "get_rng_state",
    "load_checkpoint",
    "load_state_checked",
    "resume_changes",
    "save_checkpoint",
    "set_rng_state",
    "spec_of",
    "state_diff",
]

FORMAT = "torchspec.checkpoint/1"

# What to do when a checkpoint does not fit the spec: while training (resume) and under eval/predict.
RESUME_HINTS = (
    "the model in the spec changed since this checkpoint was written",
    "train from scratch (no --resume, or another output_dir), or restore the spec it was trained with",
)
FOREIGN_CHECKPOINT_HINTS = (
    "this checkpoint was written for another spec (or the spec changed since)",
    "pass a checkpoint written for this spec, or the spec it was trained with",
)


def get_rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": [version, list(state), gauss],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (unique temp file, fsync, rename, fsync the folder)."""
    with atomic_write(path) as handle:
        torch.save({"format": FORMAT, **state}, handle)


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code runs); a SpecError if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError.single(path, f"checkpoint {path} does not exist") from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError.single(path, f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SpecError.single(
            path,
            f"{path} is not a torchspec checkpoint",
            hints=["checkpoints are written by `torchspec train` (last.ckpt, best.ckpt)"],
        )
    return state


def spec_of(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(state["spec"])  # type: ignore[no-any-return]


def _shape(tensor: Any) -> str:
    return "-" if tensor is None else "[" + ", ".join(map(str, tensor.shape)) + "]"


def state_diff(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(layer, tensor, expected shape, found shape) for every tensor that differs or is missing."""
    rows = []
    for key in [*expected, *(k for k in found if k not in expected)]:
        want, got = expected.get(key), found.get(key)
        if want is not None and isinstance(got, torch.Tensor) and want.shape == got.shape:
            continue
        layer, _, tensor = key.rpartition(".")
        rows.append((layer or "(root)", tensor, _shape(want), _shape(got)))
    return rows


def load_state_checked(
    model: torch.nn.Module,
    found: dict[str, Any],
    file: str,
    hints: tuple[str, ...] = RESUME_HINTS,
) -> None:
    """``model.load_state_dict(found)``, or a per-layer diff instead of torch's size-mismatch dump.

    ``hints`` say what to do about a mismatch; the default is the advice for ``train --resume``.
    """
    rows = state_diff(model.state_dict(), found)
    if rows:
        widths = [max(len(r[i]) for r in [("layer", "tensor", "expected", "found"), *rows]) for i in range(4)]
        lines = [
            "    " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in [("layer", "tensor", "expected", "found"), *rows]
        ]
        message = f"the checkpoint does not match the spec ({len(rows)} tensors differ):\n" + "\n".join(lines)
        raise SpecError([Problem(file, 0, 0, message, tuple(hints))])
    model.load_state_dict(found, strict=True)


# train keys that may differ between a checkpoint and its resume: they change how long or how fast
# the run goes, or where its files go, not which samples each step sees or how it updates the
# weights (device/speed options can change float rounding, like moving the run to another machine).
# Every other key (data, val, batch_size, shuffle, drop_last, loss, optimizer, scheduler, seed,
# warmup_steps, grad_clip, precision, monitor, ...) must be the checkpoint's, or the resume is not
# exact: another optimizer cannot load the state (KeyError deep in torch), a new lr is silently
# overwritten by the saved param groups, another batch_size moves the mid-epoch position.
RESUME_FREE_KEYS = frozenset({
    "epochs", "num_workers", "pin_memory", "persistent_workers", "output_dir", "checkpoint_every",
    "device", "channels_last", "compile", "cudnn_benchmark", "parallel", "device_ids",
    "data.download", "val.download",
})  # fmt: skip


_UNSET: Any = object()  # a key one side of the comparison lacks (None values are not dumped)


def _show(value: Any) -> str:
    """A setting as in YAML flow style: ``Adam``, ``0.01``, ``true``, ``[0.9, 0.999]``, ``{type: SGD}``."""
    if value is _UNSET:
        return "(unset)"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):  # its type/source tag first, as in a spec
        keys = sorted(value, key=lambda k: k not in ("type", "source"))
        return "{" + ", ".join(f"{k}: {_show(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return json.dumps(value)


def resume_changes(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: saved → current`` for each train setting that differs, except RESUME_FREE_KEYS.

    Nested sections (optimizer, data, ...) are compared key by key, unless their ``type``/``source``
    differs: then the whole section is one line (Adam's betas against SGD's momentum says nothing).
    """
    changes = []
    for key in [*saved, *(k for k in current if k not in saved)]:
        name = prefix + key
        old, new = saved.get(key, _UNSET), current.get(key, _UNSET)
        if name in RESUME_FREE_KEYS or old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            tag = "source" if "source" in old else "type"
            if old.get(tag) == new.get(tag):
                changes.extend(resume_changes(old, new, name + "."))
                continue
        changes.append(f"train.{name}: {_show(old)} → {_show(new)}")
    return changes
