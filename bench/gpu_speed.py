"""How much do the speed options buy on a GPU? Ratios measured side by side in one run.

    python bench/gpu_speed.py [--batch 16] [--steps 20] [--repeats 5]

Needs CUDA: without it, says so and exits 0. Prints, for C3D (specs/c3d.yaml, 16x112x112 clips):
  1. train clips/s with bf16 + channels_last_3d + torch.compile / fp32 eager (goal >= 2.5x on an
     H100-class card). Both runners are built and warmed up (compiled) first, then timed windows
     of --steps steps alternate between them; the ratio is the median over --repeats windows.
  2. whether the DataLoader keeps the GPU fed: clips/s of the fast configuration fed from a
     DataLoader over random clips in host memory (pinned, num_workers 4, non_blocking copies)
     / fed the same batch pre-generated on the device (goal: close to 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from torchspec.benchmark import Runner

C3D = Path(__file__).resolve().parent.parent / "specs" / "c3d.yaml"


def rate(runner: Runner, steps: int, batch: int) -> float:
    """Clips/s over ``steps`` steps on the runner's own on-device batch."""
    runner.sync()
    start = time.perf_counter()
    for _ in range(steps):
        runner.step()
    runner.sync()
    return steps * batch / (time.perf_counter() - start)


def loader_rate(
    runner: Runner, loader: DataLoader[tuple[torch.Tensor, torch.Tensor]], steps: int, batch: int
) -> float:
    """Clips/s over ``steps`` steps fed by ``loader`` (host -> device copies included)."""
    fmt = runner.plan.input_format(5)
    batches = iter(loader)
    runner.sync()
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        x = x.to(runner.device, non_blocking=True, memory_format=fmt)
        runner.step(x, y.to(runner.device, non_blocking=True))
    runner.sync()
    return steps * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu_speed.py needs a CUDA GPU; none is available here (nothing measured)")
        return 0
    name = torch.cuda.get_device_name()
    common = {"device": "cuda", "batch": args.batch, "mode": "train"}
    print(f"device: {name}, torch {torch.__version__}; C3D train steps, batch {args.batch} clips")
    eager = Runner(C3D, precision="fp32", channels_last=False, compile=False, **common)  # type: ignore[arg-type]
    fast = Runner(C3D, precision="bf16", channels_last=True, compile=True, **common)  # type: ignore[arg-type]
    for runner in (eager, fast):  # warm-up: cudnn autotuning, compilation (minutes for `fast`)
        rate(runner, 5, args.batch)

    ratios, eager_rates, fast_rates = [], [], []
    for _ in range(args.repeats):
        e, f = rate(eager, args.steps, args.batch), rate(fast, args.steps, args.batch)
        eager_rates.append(e)
        fast_rates.append(f)
        ratios.append(f / e)
    speedup = statistics.median(ratios)
    print(f"  fp32 eager: {statistics.median(eager_rates):,.1f} clips/s")
    print(f"  bf16 + channels_last_3d + compile: {statistics.median(fast_rates):,.1f} clips/s")
    print(f"1. fast / fp32 eager = {speedup:.2f}x   (goal >= 2.5x: {'met' if speedup >= 2.5 else 'NOT met'})")

    # 2. The data pipeline: random clips in host memory through a DataLoader vs. on-device batches.
    samples = args.batch * (args.steps + 2)
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn((samples, *fast.report.input[1:]), generator=gen)  # (N, 3, 16, 112, 112)
    labels = torch.randint(0, fast.report.output[1], (samples,), generator=gen)
    fed = []
    for _ in range(args.repeats):
        loader = DataLoader(
            TensorDataset(clips, labels), batch_size=args.batch, shuffle=True, num_workers=4,
            pin_memory=True, persistent_workers=False, drop_last=True,
        )  # fmt: skip
        on_device = rate(fast, args.steps, args.batch)
        from_loader = loader_rate(fast, loader, args.steps, args.batch)
        fed.append(from_loader / on_device)
    kept = statistics.median(fed)
    verdict = (
        "the loader keeps up" if kept >= 0.95 else "the GPU waits for data: more workers, or data on the GPU"
    )
    print(f"2. DataLoader-fed / on-device batches = {kept:.2f}   ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
