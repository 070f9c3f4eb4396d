"""``torchspec bench``: steps per second of a spec's model on random data of its input shape.

The model is built from the spec and run with the speed options of its ``train`` section when it
has one (precision, channels_last, compile; keyword arguments override them), on batches made once
on the device, so the figure is the model's speed, not the data pipeline's. ``mode="train"`` times
forward + loss + backward + optimizer step; ``"infer"`` times the forward pass under no_grad.
Achieved MACs/s counts the forward MACs of :func:`torchspec.infer_shapes` per sample, times 3 in
train mode (a backward pass costs about two forwards).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from torchspec.infer import infer_shapes
from torchspec.memory import check_fits, run_estimate
from torchspec.spec import Spec, load_spec

__all__ = ["BenchResult", "Runner", "benchmark"]


@dataclass
class BenchResult:
    name: str
    device: str
    mode: str  # train | infer
    batch: int
    steps: int
    warmup: int
    precision: str
    channels_last: bool
    compile: bool
    samples_per_s: float
    step_ms_median: float
    step_ms_p90: float
    peak_memory_bytes: int
    peak_memory_kind: str  # what was measured
    macs_per_sample: int  # forward MACs of one sample
    macs_factor: int  # 3 for train (forward + backward), 1 for infer
    macs_per_s: float  # macs_per_sample * macs_factor * samples_per_s
    params: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class Runner:
    """A built model, its optimizer and a batch on the device: ``step()`` runs one timed unit.

    Build once, then call :meth:`measure` as often as wanted (``bench/gpu_speed.py`` interleaves
    two runners so machine noise hits both alike).
    """

    def __init__(
        self,
        spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
        *,
        device: str = "auto",
        batch: int | None = None,
        mode: str = "train",
        overrides: Iterable[str] = (),
        precision: str | None = None,
        channels_last: bool | None = None,
        compile: bool | None = None,
        variant: str | None = None,
    ) -> None:
        from torchspec.builder import build_from_report, random_input
        from torchspec.training.objects import adapt_target, make_loss, make_optimizer
        from torchspec.training.parts import autocast, pick_device
        from torchspec.training.resolve import resolve_spec
        from torchspec.training.speed import apply_speed, plan_speed

        if mode not in ("train", "infer"):
            raise ValueError(f"mode must be train or infer, not {mode!r}")
        # The spec's own train section (or all defaults on random data) with the bench's settings
        # as --set overrides, so an option that cannot apply is reported at its line in the file.
        has_train = (spec if isinstance(spec, Spec) else load_spec(spec, variant=variant)).train is not None
        options = {"precision": precision, "channels_last": channels_last, "compile": compile}
        settings = [] if has_train else ["train.data=random"]
        settings += [f"train.device={device}", "train.parallel=none", "train.device_ids=null"]
        settings += [f"train.{k}={str(v).lower()}" for k, v in options.items() if v is not None]
        settings += [f"train.batch_size={batch}"] if batch is not None else []
        resolved, config = resolve_spec(spec, [*settings, *overrides], variant=variant)
        self.device = pick_device(config.device)
        report = infer_shapes(resolved, batch=config.batch_size)
        self.plan = plan_speed(resolved, config, report, self.device)
        self.config, self.report, self.mode = config, report, mode
        self.notes = list(self.plan.notices)
        fits = run_estimate(
            report, "infer" if mode == "infer" else "train", config.optimizer, self.plan.precision
        )
        hints = ("use a smaller --batch", "or a device with more memory (--device)")
        what = f"bench --mode {mode} with batch {config.batch_size}"
        check_fits(fits, str(self.device), what=what, where=resolved.document.file, hints=hints)

        self.model = build_from_report(report, seed=config.seed).to(self.device)
        self.net = apply_speed(self.model, self.plan, say=lambda _: None)
        self.model.train(mode == "train")
        gen = torch.Generator().manual_seed(config.seed)
        x = random_input(report, gen)  # (batch, *input): floats, or valid token ids
        self.x = x.to(self.device, memory_format=self.plan.input_format(x.dim()))
        out_shape = report.output
        classes = out_shape[1] if len(out_shape) == 2 else None
        if config.loss.type in ("CrossEntropyLoss", "NLLLoss") and classes is not None:
            self.y = torch.randint(0, classes, (out_shape[0],), generator=gen).to(self.device)
        else:
            self.y = torch.randn(out_shape, generator=gen).to(self.device)
        self.loss_fn = make_loss(config.loss)
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters())
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.plan.scaler)
        self._autocast, self._adapt = autocast, adapt_target

    def step(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        """One training step (or forward pass) on ``x, y`` (default: the runner's own batch)."""
        x = self.x if x is None else x
        y = self.y if y is None else y
        if self.mode == "infer":
            with torch.no_grad(), self._autocast(self.device, self.plan.precision):
                self.net(x)
            return
        with self._autocast(self.device, self.plan.precision):
            output = self.net(x)
            loss = self.loss_fn(output, self._adapt(self.config.loss.type, output, y))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure(self, steps: int) -> list[float]:
        """Seconds of each of ``steps`` steps (the device is synchronised after each)."""
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            self.step()
            self.sync()
            times.append(time.perf_counter() - start)
        return times


def benchmark(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    *,
    device: str = "auto",
    batch: int | None = None,
    steps: int = 20,
    warmup: int = 5,
    mode: str = "train",
    overrides: Iterable[str] = (),
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool | None = None,
    variant: str | None = None,
) -> BenchResult:
    """Build, warm up ``warmup`` steps, time ``steps`` steps; see the module docstring."""
    if steps < 1 or warmup < 0:
        raise ValueError("steps must be >= 1 and warmup >= 0")
    runner = Runner(
        spec, device=device, batch=batch, mode=mode, overrides=overrides,
        precision=precision, channels_last=channels_last, compile=compile, variant=variant,
    )  # fmt: skip
    cuda = runner.device.type == "cuda"
    runner.measure(warmup)  # compile, cudnn autotuning, allocator growth
    if cuda:
        torch.cuda.reset_peak_memory_stats(runner.device)
    times = runner.measure(steps)
    if cuda:
        peak = torch.cuda.max_memory_allocated(runner.device)
        kind = "CUDA max_memory_allocated"
    else:
        peak, kind = _peak_rss_bytes(), "CPU peak RSS of the process"
    batch_size = runner.config.batch_size
    median = statistics.median(times)
    per_sample = infer_shapes(runner.report.spec, batch=1).macs
    factor = 3 if mode == "train" else 1
    samples_per_s = batch_size * len(times) / sum(times)
    return BenchResult(
        name=runner.report.name,
        device=str(runner.device),
        mode=mode,
        batch=batch_size,
        steps=steps,
        warmup=warmup,
        precision=runner.plan.precision,
        channels_last=runner.plan.memory_format is not None,
        compile=runner.plan.compile,
        samples_per_s=samples_per_s,
        step_ms_median=median * 1000,
        step_ms_p90=_percentile(times, 0.9) * 1000,
        peak_memory_bytes=int(peak),
        peak_memory_kind=kind,
        macs_per_sample=per_sample,
        macs_factor=factor,
        macs_per_s=per_sample * factor * samples_per_s,
        params=runner.report.params,
        notes=runner.notes,
    )
