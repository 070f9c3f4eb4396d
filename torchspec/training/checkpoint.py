"""Checkpoints: everything an exact resume needs, in a form ``torch.load(weights_only=True)`` reads.

A checkpoint is a dict of tensors and plain values: model, optimizer, scheduler and GradScaler
state, the position (epoch, batches done in it, global step), the metrics so far, and the RNG
states of Python, numpy, torch and CUDA. It is written atomically (:mod:`torchspec.fileio`): to a
unique temporary file in the same folder, flushed and fsynced, then renamed over the old one, so a
kill at any moment leaves either the old or the new checkpoint, never a torn one.

Reading one trusts nothing (:func:`load_checkpoint`): a regular file, every zip member's CRC, then
the structure of every key (:mod:`.ckpt_check`), the embedded spec a mapping, every tensor finite;
:func:`read_weights` also compares the model's tensors with the spec's analytic state, and
:func:`restore` checks the optimizer, scheduler and scaler states against the run's own objects.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from torchspec.artefacts import check_state, embedded_spec, load_embedded_spec, not_torchspec, state_rows
from torchspec.errors import SpecError
from torchspec.fileio import atomic_write
from torchspec.infer import infer_shapes
from torchspec.reading import open_regular
from torchspec.spec import Spec
from torchspec.training.ckpt_check import Invalid, check_against, invalid, validate, verify_zip

__all__ = [
    "FOREIGN_CHECKPOINT_HINTS",
    "FORMAT",
    "RESUME_FREE_KEYS",
    "RESUME_HINTS",
    "get_rng_state",
    "load_checkpoint",
    "load_state_checked",
    "read_weights",
    "restore",
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


CHECKPOINT_HINTS = ("checkpoints are written by `torchspec train` (last.ckpt, best.ckpt)",)


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read and verify a checkpoint; a SpecError naming the file if anything about it is wrong.

    In order: a regular file that fits in memory (:func:`torchspec.reading.open_regular`), every
    zip member's size and CRC (:func:`.ckpt_check.verify_zip`), ``torch.load(weights_only=True)``
    (no code runs) of the same open file, the format tag, then the structure of every key
    (:func:`.ckpt_check.validate`): tensors finite, the embedded spec a mapping, and so on.
    """
    handle, size = open_regular(path, "checkpoint", CHECKPOINT_HINTS)
    with handle:
        verify_zip(handle, size, path)
        handle.seek(0)
        try:
            state = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpecError.single(path, f"cannot read checkpoint {path}: {reason[:300]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise not_torchspec(path, f"no {FORMAT!r} format tag", CHECKPOINT_HINTS)
    try:
        if "spec" in state:  # data, never a path: "not a torchspec file" otherwise
            embedded_spec(state["spec"], path)
        validate(state)
    except Invalid as exc:
        raise invalid(path, str(exc)) from None
    return state


def restore(
    state: dict[str, Any], path: str, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any
) -> None:
    """Load a validated checkpoint's optimizer, scheduler and GradScaler states into this run's
    objects, after checking they fit them; any failure names the file and the key."""
    try:
        check_against(state, optimizer, scheduler, scaler)
        key = "optimizer"
        optimizer.load_state_dict(state["optimizer"])
        key = "scheduler"
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        key = "scaler"
        if scaler.is_enabled() and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
    except Invalid as exc:
        raise invalid(path, str(exc)) from None
    except Exception as exc:  # anything torch still refuses, named rather than a traceback
        raise invalid(path, f"{key}: {str(exc).strip()[:200] or type(exc).__name__}") from None


def spec_of(state: dict[str, Any], path: str = "<checkpoint>") -> dict[str, Any]:
    """The spec a checkpoint carries, as a dict (a checkpoint's spec is JSON text of a mapping)."""
    return embedded_spec(state["spec"], path)


def read_weights(path: str) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, model state) of a checkpoint, its tensors' names and shapes checked against its spec."""
    state = load_checkpoint(path)
    spec = load_embedded_spec(state["spec"], path)
    check_state(
        infer_shapes(spec).state_shapes(),
        {name: tuple(t.shape) for name, t in state["model"].items()},
        path,
        ("the file was changed after torchspec wrote it, or it was not written by torchspec",),
        subject="the model in the checkpoint does not match the spec embedded in it",
    )
    return spec, state["model"]


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def state_diff(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(layer, tensor, expected shape, found shape) for every tensor that differs or is missing."""
    return state_rows(_shapes(expected), _shapes(found))


def load_state_checked(
    model: torch.nn.Module,
    found: dict[str, Any],
    file: str,
    hints: tuple[str, ...] = RESUME_HINTS,
) -> None:
    """``model.load_state_dict(found)``, or a per-layer diff instead of torch's size-mismatch dump.

    ``hints`` say what to do about a mismatch; the default is the advice for ``train --resume``.
    """
    check_state(_shapes(model.state_dict()), _shapes(found), file, hints)
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
    "patience", "min_delta", "test",  # when to stop and what eval scores, not how to step
    "init",  # read only by a fresh run: a resume continues from the checkpoint's weights
    "log",  # what is recorded (metrics.csv, TensorBoard), not how the run steps
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
