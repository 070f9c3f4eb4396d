"""Speed options of the ``train`` section, checked against the device and the model, then applied.

Each option either applies or fails with a located error; the few documented fallbacks print one
line. Nothing is silently slower than asked:

- ``precision: bf16`` autocasts to bfloat16 (CUDA with bf16 support, or the CPU);
  ``precision: fp16`` autocasts to float16 with a GradScaler and needs CUDA (or MPS): on the CPU
  float16 matmuls are emulated and slower than fp32, so it is an error there.
- ``channels_last: true`` converts a Conv2d net to ``channels_last`` and a Conv3d net to
  ``channels_last_3d`` (weights and every batch); a net with neither, or both, is an error.
- ``compile: true`` wraps the model in ``torch.compile`` (the first steps compile).
- ``cudnn_benchmark`` (default on with CUDA) lets cuDNN pick the fastest kernels per shape.
- ``pin_memory`` (default on with CUDA) pins host batches for ``non_blocking`` copies; asked for
  without CUDA it is turned off with a notice (pinning needs a CUDA device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from torchspec.errors import SpecError
from torchspec.infer import ShapeReport
from torchspec.spec import Spec
from torchspec.training.config import TrainConfig

__all__ = ["SpeedPlan", "apply_speed", "memory_format_of", "plan_speed"]

_CONV_2D = ("Conv2d", "ConvTranspose2d")
_CONV_3D = ("Conv3d", "ConvTranspose3d")


@dataclass(frozen=True)
class SpeedPlan:
    precision: str  # fp32 | bf16 | fp16
    memory_format: torch.memory_format | None  # None: leave tensors contiguous
    compile: bool
    cudnn_benchmark: bool
    pin_memory: bool
    notices: tuple[str, ...] = ()

    @property
    def scaler(self) -> bool:
        return self.precision == "fp16"

    def input_format(self, ndim: int) -> torch.memory_format:
        """The format for batches of ``ndim`` dims: the plan's when it fits them, else as they are."""
        if self.memory_format is None:
            return torch.preserve_format
        wanted = 4 if self.memory_format == torch.channels_last else 5
        return self.memory_format if wanted == ndim else torch.preserve_format

    def describe(self) -> str:
        parts = [f"precision {self.precision}"]
        if self.memory_format is not None:
            parts.append(str(self.memory_format).removeprefix("torch."))
        if self.compile:
            parts.append("torch.compile")
        if self.cudnn_benchmark:
            parts.append("cudnn.benchmark")
        if self.pin_memory:
            parts.append("pinned memory")
        return ", ".join(parts)


def memory_format_of(report: ShapeReport) -> torch.memory_format | None:
    """channels_last for a net with 2-d convolutions, channels_last_3d for 3-d; None otherwise."""
    types = {row.type for row in report.rows}
    has_2d, has_3d = bool(types & set(_CONV_2D)), bool(types & set(_CONV_3D))
    if has_2d == has_3d:  # neither, or both (one memory format cannot fit both)
        return None
    return torch.channels_last if has_2d else torch.channels_last_3d


def plan_speed(spec: Spec, config: TrainConfig, report: ShapeReport, device: torch.device) -> SpeedPlan:
    """Check every speed option against ``device`` and the model; a located SpecError if one can't apply."""
    doc = spec.document
    cuda = device.type == "cuda"
    notices: list[str] = []
    if config.precision == "fp16" and device.type not in ("cuda", "mps"):
        message = f"precision: fp16 needs a CUDA device; this run is on {device}"
        hints = ["float16 on the CPU is emulated and slower than fp32: use precision: bf16 or fp32"]
        raise SpecError([doc.problem(("train", "precision"), message, hints)])
    if config.precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        message = f"precision: bf16 is not supported by {torch.cuda.get_device_name(device)}"
        raise SpecError([doc.problem(("train", "precision"), message, ["use precision: fp16"])])
    memory_format = None
    if config.channels_last:
        memory_format = memory_format_of(report)
        if memory_format is None:
            types = {row.type for row in report.rows}
            found = "both Conv2d and Conv3d layers" if types & set(_CONV_2D) else "no Conv2d or Conv3d layer"
            message = f"channels_last: true needs a net of 2-d or of 3-d convolutions; this one has {found}"
            raise SpecError([doc.problem(("train", "channels_last"), message, ["remove channels_last"])])
    pin = config.pin_memory if config.pin_memory is not None else cuda
    if pin and not cuda:
        notices.append(f"pin_memory: true needs CUDA; this run is on {device}, so batches are not pinned")
        pin = False
    bench = config.cudnn_benchmark if config.cudnn_benchmark is not None else cuda
    if bench and not cuda:
        notices.append(f"cudnn_benchmark: true applies to CUDA only; ignored on {device}")
        bench = False
    return SpeedPlan(config.precision, memory_format, config.compile, bench, pin, tuple(notices))


def apply_speed(
    model: torch.nn.Module,
    plan: SpeedPlan,
    say: Callable[[str], None] = print,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> torch.nn.Module:
    """Set ``model``'s memory format in place, ``wrap`` it (DataParallel, DDP), compile the result.

    Returns what the loop calls; ``model`` itself stays the plain module whose state_dict is saved.
    """
    for notice in plan.notices:
        say(f"notice: {notice}")
    if plan.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    if plan.memory_format is not None:
        model.to(memory_format=plan.memory_format)  # type: ignore[call-overload]
    net = wrap(model) if wrap is not None else model
    if plan.compile:
        return torch.compile(net)  # type: ignore[return-value]  # DDP first, then compile: DDPOptimizer
    return net
