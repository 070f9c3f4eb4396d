"""Will it fit? The analytic size of a model's tensors against the memory a device has free.

``check`` knows every shape before anything is allocated, so ``build``, ``bench`` and ``train``
compare what they are about to allocate with the memory available (``MemAvailable`` of
``/proc/meminfo``, capped by the cgroup's limit, for the CPU; ``torch.cuda.mem_get_info`` for a CUDA
device) and refuse with "needs about X GB, Y GB available" instead of dying in torch's allocator.

The estimates are deliberately low (a lower bound of what torch will really hold), so a refusal
is certain to be right; a run that passes may still need more (allocator slack, cuDNN workspaces).
Everything here is pure Python; torch is imported only to ask a CUDA device for its free memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from torchspec.errors import SpecError

__all__ = [
    "Estimate",
    "MemoryReport",
    "available_bytes",
    "check_fits",
    "check_size",
    "estimate",
    "format_bytes",
    "optimizer_slots",
    "run_estimate",
]

Mode = Literal["build", "infer", "train"]
BYTES_PER_ELEMENT = 4  # float32
_SLOTS = {"Adam": 2, "AdamW": 2, "NAdam": 2, "RAdam": 2, "Adamax": 2, "RMSprop": 1, "Adagrad": 1}


class MemoryReport(Protocol):
    """What :func:`estimate` reads of a :class:`torchspec.infer.ShapeReport`."""

    @property
    def params(self) -> int: ...
    @property
    def param_bytes(self) -> int: ...
    @property
    def activation_bytes(self) -> int: ...
    @property
    def input(self) -> tuple[int, ...]: ...
    @property
    def rows(self) -> Any: ...


@dataclass(frozen=True)
class Estimate:
    """Bytes a run will hold at least, and what they are (for the message)."""

    total: int
    parts: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        return " + ".join(f"{name} {format_bytes(size)}" for name, size in self.parts if size)


def format_bytes(size: float) -> str:
    for factor, unit in ((2**40, "TB"), (2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
        if size >= factor:
            return f"{size / factor:,.1f} {unit}"
    return f"{int(size)} B"


def optimizer_slots(kind: str, momentum: float = 0.0) -> int:
    """Parameter-sized state tensors the optimizer keeps (Adam: exp_avg and exp_avg_sq)."""
    if kind == "SGD":
        return 1 if momentum > 0 else 0
    return _SLOTS.get(kind, 0)


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def estimate(report: MemoryReport, mode: Mode, *, slots: int = 0, half: bool = False) -> Estimate:
    """A lower bound of the bytes ``mode`` holds for ``report``'s model and batch.

    build: parameters and buffers. infer: those, the input batch and the largest one layer's input
    plus output (no_grad frees the rest). train: parameters and buffers, the trainable parameters'
    gradients and ``slots`` optimizer states, the input batch and every layer's output (kept for
    backward). ``half`` (bf16/fp16 autocast) counts activations at 2 bytes.
    """
    params = report.param_bytes
    parts: list[tuple[str, int]] = [("parameters", params)]
    if mode == "build":
        return Estimate(params, tuple(parts))
    scale = 2 if half else 1
    batch_in = _numel(report.input) * BYTES_PER_ELEMENT
    parts.append(("input batch", batch_in))
    if mode == "infer":
        peak = max((_numel(r.input) + _numel(r.output) for r in report.rows), default=0)
        parts.append(("activations", peak * BYTES_PER_ELEMENT // scale))
    else:
        trainable = report.params * BYTES_PER_ELEMENT  # buffers have no gradient, no optimizer state
        parts += [("gradients", trainable), ("optimizer state", trainable * slots)]
        parts.append(("activations", report.activation_bytes // scale))
    return Estimate(sum(size for _, size in parts), tuple(parts))


def run_estimate(report: MemoryReport, mode: Mode, optimizer: Any, precision: str) -> Estimate:
    """:func:`estimate` for a train/bench run: ``optimizer`` is the train section's optimizer
    config (``type``, ``momentum``), ``precision`` fp32 | bf16 | fp16."""
    slots = optimizer_slots(
        str(getattr(optimizer, "type", "")), float(getattr(optimizer, "momentum", 0) or 0)
    )
    return estimate(report, mode, slots=slots, half=precision in ("bf16", "fp16"))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """The cgroup v2 limit left (memory.max - memory.current), if this process has one."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as handle:
            limit = handle.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as handle:
            current = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" or not limit.isdigit() else max(0, int(limit) - current)


def available_bytes(device: str) -> int | None:
    """Free memory of ``device`` ("cpu", "cuda", "cuda:1", "mps"...) in bytes; None if unknown."""
    kind, _, index = device.partition(":")
    if kind == "cpu":
        known = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
        return min(known) if known else None
    if kind == "cuda":
        import torch  # only here: the CUDA driver knows the free memory

        try:
            free, _total = torch.cuda.mem_get_info(int(index) if index else None)
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free)
    return None  # mps shares the system's memory without a reliable free figure


def check_fits(needed: Estimate, device: str, *, what: str, where: str, hints: tuple[str, ...] = ()) -> None:
    """Raise a :class:`SpecError` at ``where`` when ``needed`` exceeds ``device``'s free memory.

    ``what`` names the work ("building the model", "training with batch_size 512")."""
    if os.environ.get("TORCHSPEC_NO_MEMORY_CHECK") == "1":
        return
    free = available_bytes(device)
    if free is None or needed.total <= free:
        return
    message = (
        f"{what} needs about {format_bytes(needed.total)} ({needed.describe()}), "
        f"{format_bytes(free)} available on {device}"
    )
    raise SpecError.single(where, message, hints=hints)


def check_size(nbytes: int, what: str, file: str, hints: Sequence[str] = ()) -> None:
    """Refuse to read or build ``nbytes`` in this machine's memory when they are not available.

    ``what`` says what would take the memory ("building the model of F", "reading checkpoint F");
    the message reads ``FILE: error: WHAT would take 1.8 GB of memory, but only 1.2 GB is available``.
    Where the system does not report its free memory nothing is refused.
    """
    if os.environ.get("TORCHSPEC_NO_MEMORY_CHECK") == "1":
        return
    free = available_bytes("cpu")
    if free is None or nbytes <= free:
        return
    raise SpecError.single(
        file,
        f"{what} would take {format_bytes(nbytes)} of memory, but only {format_bytes(free)} is available",
        hints=[*hints, "free some memory, or use a machine with more"],
    )
