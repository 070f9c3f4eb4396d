"""Verifying a checkpoint before any part of it is trusted.

:func:`verify_zip`: ``torch.save`` writes a zip archive with a CRC-32 per member; every member is
read back and its CRC checked (after its declared sizes are checked against the file's size, so a
hostile archive costs at most one pass over the file), so a flipped byte is an error, not a
silently different tensor. :func:`validate` checks the structure of the loaded dict, every key the
loop reads (see ``Checkpoints.snapshot`` in :mod:`torchspec.training.progress`), and
:func:`check_against` checks the optimizer, scheduler and GradScaler states against the live
objects they will be loaded into.
Every failure reads ``FILE: error: not a valid torchspec checkpoint: KEY: what is wrong``.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import torch

from torchspec.errors import SpecError

__all__ = ["Invalid", "check_against", "invalid", "validate", "verify_zip"]

MAX_MEMBERS = 1_000_000
CHUNK = 1 << 20


class Invalid(Exception):
    """A structural problem at ``where`` (``rng.numpy[1]``)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")


def invalid(file: str, problem: str) -> SpecError:
    return SpecError.single(
        file,
        f"not a valid torchspec checkpoint: {problem}",
        hints=["checkpoints are written by `torchspec train` (last.ckpt, best.ckpt); use an intact one"],
    )


def verify_zip(handle: IO[bytes], size: int, file: str) -> None:
    """Check every member's declared size against the file and its CRC-32 against its bytes."""
    try:
        archive = zipfile.ZipFile(handle)
    # zipfile raises many kinds on hostile input (BadZipFile, NotImplementedError for unknown
    # versions, RuntimeError for encryption, struct.error, UnicodeDecodeError...): all are "damaged"
    except Exception as exc:
        raise SpecError.single(
            file,
            f"cannot read checkpoint {file}: truncated or not a torchspec checkpoint ({exc})",
            hints=["checkpoints are written by `torchspec train` (last.ckpt, best.ckpt)"],
        ) from None
    with archive:
        members = archive.infolist()
        if not members or len(members) > MAX_MEMBERS:
            raise invalid(file, f"the archive holds {len(members)} members")
        total = 0
        for info in members:
            total += info.compress_size
            if info.header_offset + info.compress_size > size or total > size:
                raise invalid(file, f"member {info.filename[:80]} declares more bytes than the file has")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise invalid(file, f"member {info.filename[:80]} is compressed (torch.save stores members)")
        try:
            for info in members:
                with archive.open(info) as member:
                    while member.read(CHUNK):
                        pass
        except Exception as exc:  # as above: whatever zipfile raises, the file is damaged
            raise SpecError.single(
                file,
                f"checkpoint {file} is damaged: {exc} (the file changed after it was written)",
                hints=["use an intact copy, e.g. best.ckpt or a backup"],
            ) from None


# -- structure ------------------------------------------------------------------------------------
def _name(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {list(value.shape)}"
    return "None" if value is None else f"a {type(value).__name__} ({str(value)[:40]!r})"


def _int(value: Any, where: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Invalid(where, f"expected an int >= {low}, found {_name(value)}")
    return value


def _number(value: Any, where: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Invalid(where, f"expected a finite number, found {_name(value)}")


def _dict(value: Any, where: str, keys: tuple[str, ...] = ()) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise Invalid(where, f"expected a mapping, found {_name(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Invalid(where, f"missing {', '.join(missing)}")
    return value


def _list(value: Any, where: str, length: int | None = None) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise Invalid(where, f"expected a list, found {_name(value)}")
    if length is not None and len(value) != length:
        raise Invalid(where, f"expected {length} items, found {len(value)}")
    return value


def _tensor(value: Any, where: str, dtype: torch.dtype | None = None, numel: int | None = None) -> None:
    if not isinstance(value, torch.Tensor):
        raise Invalid(where, f"expected a tensor, found {_name(value)}")
    if (dtype is not None and value.dtype != dtype) or (numel is not None and value.numel() != numel):
        want = f"{numel} " if numel is not None else ""
        raise Invalid(
            where, f"expected a tensor of {want}{str(dtype).removeprefix('torch.')}, found {_name(value)}"
        )
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise Invalid(where, "holds non-finite values (NaN or inf)")


KEYS = ("format", "spec", "model", "optimizer", "scheduler", "scaler", "epoch", "batch", "step",
        "best", "history", "sums", "rng")  # fmt: skip
# absent from checkpoints of older versions; variant and overrides: only when the spec used them
OPTIONAL = ("world_size", "variant", "overrides", "ema")
SUMS = ("loss", "samples", "correct", "counted", "seconds")
HISTORY = ("epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def validate(state: Mapping[str, Any]) -> None:
    """Raise :class:`Invalid` for the first key of ``state`` that is missing or malformed."""
    unknown = [k for k in state if k not in KEYS and k not in OPTIONAL]
    if unknown:
        raise Invalid(str(unknown[0])[:80], "unexpected key")
    _dict(state, "(checkpoint)", KEYS)
    model = _dict(state["model"], "model")
    for name, tensor in model.items():
        if not isinstance(name, str):
            raise Invalid("model", f"tensor names must be strings, found {_name(name)}")
        _tensor(tensor, f"model.{name}")
    _optimizer(state["optimizer"])
    for key in ("scheduler", "scaler"):
        if state[key] is not None:
            _dict(state[key], key)
    for key in ("epoch", "batch", "step"):
        _int(state[key], key)
    _number(state["best"], "best", optional=True)
    history = _list(state["history"], "history")
    if len(history) != state["epoch"]:
        raise Invalid("history", f"{len(history)} rows for {state['epoch']} finished epochs")
    for i, row in enumerate(history):
        _dict(row, f"history[{i}]", HISTORY)
        _int(row["epoch"], f"history[{i}].epoch", 1)
        _int(row["step"], f"history[{i}].step")
        for key in HISTORY[2:]:
            _number(row[key], f"history[{i}].{key}", optional=key != "lr")
    sums = _dict(state["sums"], "sums", SUMS)
    for key in SUMS:  # counts are floats after a DDP reduction (parallel.sum): numbers, >= 0
        _number(sums[key], f"sums.{key}")
        if key != "loss" and sums[key] < 0:
            raise Invalid(f"sums.{key}", f"expected a number >= 0, found {sums[key]}")
    _rng(state["rng"])
    if state.get("ema") is not None:  # train.ema: the averaged weights, the model's names
        ema = _dict(state["ema"], "ema")
        if set(ema) != set(model):
            raise Invalid("ema", "its tensor names are not the model's")
        for name, tensor in ema.items():
            _tensor(tensor, f"ema.{name}")
    if "world_size" in state:
        _int(state["world_size"], "world_size", 1)
    for key in ("variant", "overrides"):  # for the record (the spec stored is already expanded)
        if key in state and not isinstance(state[key], str):
            raise Invalid(key, f"expected a string, found {_name(state[key])}")


def _optimizer(value: Any) -> None:
    opt = _dict(value, "optimizer", ("state", "param_groups"))
    groups = _list(opt["param_groups"], "optimizer.param_groups")
    if not groups:
        raise Invalid("optimizer.param_groups", "no parameter groups")
    seen: set[int] = set()
    for g, group in enumerate(groups):
        where = f"optimizer.param_groups[{g}]"
        _dict(group, where, ("params", "lr"))
        for p, index in enumerate(_list(group["params"], f"{where}.params")):
            if _int(index, f"{where}.params[{p}]") in seen:
                raise Invalid(f"{where}.params[{p}]", f"parameter {index} is in two groups")
            seen.add(index)
        for key, item in group.items():
            if key != "params" and isinstance(item, (int, float)) and not isinstance(item, bool):
                _number(item, f"{where}.{key}")
    for index, entry in _dict(opt["state"], "optimizer.state").items():
        if index not in seen:
            raise Invalid("optimizer.state", f"state for parameter {index!r}, which no group holds")
        for key, item in _dict(entry, f"optimizer.state[{index}]").items():
            if isinstance(item, torch.Tensor):
                _tensor(item, f"optimizer.state[{index}].{key}")
            else:
                _number(item, f"optimizer.state[{index}].{key}")


def _rng(value: Any) -> None:
    rng = _dict(value, "rng", ("python", "numpy", "torch", "cuda"))
    version, keys, gauss = _list(rng["python"], "rng.python", 3)
    _int(version, "rng.python[0]")
    _list(keys, "rng.python[1]", 625)
    if not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 2**32 for k in keys):
        raise Invalid("rng.python[1]", "expected 625 ints in [0, 2**32)")
    if keys[-1] > 624:
        raise Invalid("rng.python[1]", f"the position {keys[-1]} is beyond 624")
    _number(gauss, "rng.python[2]", optional=True)
    name, np_keys, pos, has_gauss, cached = _list(rng["numpy"], "rng.numpy", 5)
    if name != "MT19937":
        raise Invalid("rng.numpy[0]", f"expected 'MT19937', found {_name(name)}")
    _tensor(np_keys, "rng.numpy[1]", torch.int64, 624)
    if bool(((np_keys < 0) | (np_keys >= 2**32)).any()):
        raise Invalid("rng.numpy[1]", "expected 624 values in [0, 2**32)")
    if _int(pos, "rng.numpy[2]") > 624:
        raise Invalid("rng.numpy[2]", f"the position {pos} is beyond 624")
    if has_gauss not in (0, 1) or isinstance(has_gauss, bool):
        raise Invalid("rng.numpy[3]", f"expected 0 or 1, found {_name(has_gauss)}")
    _number(cached, "rng.numpy[4]")
    _tensor(rng["torch"], "rng.torch", torch.uint8, torch.get_rng_state().numel())
    for i, state in enumerate(_list(rng["cuda"], "rng.cuda")):
        _tensor(state, f"rng.cuda[{i}]", torch.uint8)


# -- against the live objects ---------------------------------------------------------------------
def _like(saved: Any, live: Any, where: str) -> None:
    """``saved`` has ``live``'s structure: the same keys, lengths and kinds of value, recursively."""
    if isinstance(live, Mapping):
        _dict(saved, where)
        if set(saved) != set(live):
            diff = sorted(map(str, set(saved) ^ set(live)))
            raise Invalid(where, f"keys differ from this run's ({', '.join(diff[:5])})")
        for key in live:
            _like(saved[key], live[key], f"{where}.{key}")
    elif isinstance(live, (list, tuple)):
        for i, (a, b) in enumerate(zip(_list(saved, where, len(live)), live)):
            _like(a, b, f"{where}[{i}]")
    elif isinstance(live, bool) or live is None or isinstance(live, str):
        if type(saved) is not type(live) and not (live is None or saved is None):
            raise Invalid(where, f"expected {_name(live)}, found {_name(saved)}")
    elif isinstance(live, (int, float)):  # inf is a legitimate value (ReduceLROnPlateau's best)
        if not isinstance(saved, (int, float)) or isinstance(saved, bool) or math.isnan(saved):
            raise Invalid(where, f"expected a number, found {_name(saved)}")
    elif isinstance(live, torch.Tensor):
        _tensor(saved, where)


def check_against(
    state: Mapping[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any
) -> None:
    """The checkpoint's optimizer, scheduler and scaler states fit the objects they will load into."""
    live_groups = optimizer.state_dict()["param_groups"]
    saved_groups = _list(state["optimizer"]["param_groups"], "optimizer.param_groups", len(live_groups))
    shapes: dict[int, tuple[int, ...]] = {}
    for g, (saved, live, params) in enumerate(zip(saved_groups, live_groups, optimizer.param_groups)):
        where = f"optimizer.param_groups[{g}]"
        _list(saved["params"], f"{where}.params", len(live["params"]))
        _like(
            {k: v for k, v in saved.items() if k != "params"},
            {k: v for k, v in live.items() if k != "params"},
            where,
        )
        shapes.update({i: tuple(p.shape) for i, p in zip(saved["params"], params["params"])})
    for index, entry in state["optimizer"]["state"].items():
        for key, item in entry.items():
            if isinstance(item, torch.Tensor) and item.ndim and tuple(item.shape) != shapes[index]:
                raise Invalid(
                    f"optimizer.state[{index}].{key}",
                    f"shape {list(item.shape)}, but the parameter is {list(shapes[index])}",
                )
    if scheduler is not None and state["scheduler"] is not None:
        _like(state["scheduler"], scheduler.state_dict(), "scheduler")
    if scaler.is_enabled() and state["scaler"]:
        _like(state["scaler"], scaler.state_dict(), "scaler")
