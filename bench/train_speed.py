"""How fast is `torchspec train`'s loop? Ratios measured side by side in one run (absolute times drift).

    python bench/train_speed.py [--repeats 5] [--epochs 4] [--samples 2048] [--batch 64]

The same small CNN (built by torchspec.build from the same spec and seed), the same `random` data
(the very tensors torchspec makes), the same DataLoader settings (batch, shuffle, num_workers 0, no
pinning), the same optimizer (Adam) and loss, the same number of steps: once through
`torchspec.train(...)` (the library function, quiet, no validation split), once through a
hand-written PyTorch loop. Repetitions alternate between the two so machine noise hits both alike.

Prints:
  1. steady-state training samples/s, torchspec / hand-written (epochs 2.. of each run: torchspec's
     own per-epoch `seconds`, measured the same way in the hand loop; goal >= 0.98): the median of
     the per-repetition ratios, and the ratio of each side's best repetition
  2. the whole call, torchspec / hand-written: wall time of `torchspec.train` (shape table, data,
     per-epoch checkpoints, metrics.csv, model.safetensors) against the hand loop's build + data + train
  3. torchspec / PyTorch Lightning's Trainer, same model and data (when lightning is installed)
  4. the cost of the new options when on, torchspec with / without (steady-state samples/s):
     `ema: {decay: 0.999}`, and `accumulate_steps: 2` at half the batch (the same samples per step)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import torchspec

SPEC = {
    "name": "bench_cnn",
    "input": [3, 32, 32],
    "layers": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
        "ReLU",
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1},
        "ReLU",
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        "Flatten",
        {"type": "Linear", "out_features": 10},
    ],
}


def train_config(args: argparse.Namespace, output_dir: str) -> dict[str, object]:
    return {
        "data": {"source": "random", "samples": args.samples, "classes": 10, "val_fraction": 0},
        "batch_size": args.batch,
        "shuffle": True,
        "num_workers": 0,
        "epochs": args.epochs,
        "optimizer": {"type": "Adam", "lr": 1e-3},
        "loss": "CrossEntropyLoss",
        "seed": 0,
        "device": "cpu",
        "output_dir": output_dir,
    }


def run_torchspec(args: argparse.Namespace, output_dir: str, **options: object) -> tuple[float, float]:
    """(steady-state samples/s, whole-call seconds) of torchspec.train; ``options``: more train keys."""
    start = time.perf_counter()
    history = torchspec.train({**SPEC, "train": {**train_config(args, output_dir), **options}}, quiet=True)
    whole = time.perf_counter() - start
    seconds = sum(row["seconds"] for row in history[1:])
    return args.samples * (len(history) - 1) / seconds, whole


def run_by_hand(args: argparse.Namespace) -> tuple[float, float]:
    """The same training written directly in PyTorch."""
    start = time.perf_counter()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)  # torchspec's `random` source: the same tensors
    x = torch.randn((args.samples, *SPEC["input"]), generator=gen)  # type: ignore[misc]
    y = torch.randint(0, 10, (args.samples,), generator=gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True, num_workers=0)
    model = torchspec.build(SPEC, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_seconds = []
    for _ in range(args.epochs):
        began = time.perf_counter()
        model.train()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - began)
    whole = time.perf_counter() - start
    return args.samples * (args.epochs - 1) / sum(epoch_seconds[1:]), whole


def run_lightning(args: argparse.Namespace, output_dir: str) -> float:
    """Whole-fit wall time of Lightning's Trainer on the same model, data and optimizer."""
    import lightning as L  # type: ignore[import-not-found]

    class Module(L.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = torchspec.build(SPEC, seed=0)
            self.loss_fn = torch.nn.CrossEntropyLoss()

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
            return self.loss_fn(self.net(batch[0]), batch[1])  # type: ignore[no-any-return]

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn((args.samples, *SPEC["input"]), generator=gen)  # type: ignore[misc]
    y = torch.randint(0, 10, (args.samples,), generator=gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True, num_workers=0)
    trainer = L.Trainer(
        max_epochs=args.epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=output_dir,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(Module(), loader)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    have_lightning = importlib.util.find_spec("lightning") is not None

    steady: list[float] = []
    whole: list[float] = []
    lightning: list[float] = []
    ts_rates, hand_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run_torchspec(args, os.path.join(tmp, "warm"))  # one untimed run of each: imports, allocator
        run_by_hand(args)
        for rep in range(args.repeats):
            # Alternate which goes first, so a drift in machine speed favours neither.
            if rep % 2 == 0:
                ts, hand = run_torchspec(args, os.path.join(tmp, f"r{rep}")), run_by_hand(args)
            else:
                hand, ts = run_by_hand(args), run_torchspec(args, os.path.join(tmp, f"r{rep}"))
            steady.append(ts[0] / hand[0])
            whole.append(hand[1] / ts[1])  # speed ratio: torchspec / hand = hand time / torchspec time
            ts_rates.append(ts[0])
            hand_rates.append(hand[0])
            if have_lightning:
                lightning.append(run_lightning(args, os.path.join(tmp, f"l{rep}")) / ts[1])

    costs: dict[str, list[float]] = {"ema": [], "accumulate": []}
    options = {
        "ema": {"ema": {"decay": 0.999}},
        "accumulate": {"accumulate_steps": 2, "batch_size": max(1, args.batch // 2)},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            plain = run_torchspec(args, os.path.join(tmp, f"p{rep}"))[0]
            for name, extra in options.items():
                costs[name].append(run_torchspec(args, os.path.join(tmp, f"{name}{rep}"), **extra)[0] / plain)

    print(
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {sys.version.split()[0]}"
    )
    print(
        f"workload: CNN on random [3, 32, 32], {args.samples} samples, batch {args.batch}, Adam, "
        f"{args.epochs} epochs, {args.repeats} interleaved repetitions, medians"
    )
    print(
        f"  steady-state samples/s: torchspec {statistics.median(ts_rates):,.0f}, "
        f"hand-written {statistics.median(hand_rates):,.0f}"
    )
    ratio = round(statistics.median(steady), 3)
    print(
        f"1. torchspec train / hand-written loop, steady-state epochs = {ratio:.3f}   "
        f"(goal >= 0.98: {'met' if ratio >= 0.98 else 'NOT met'}; per repetition: "
        + ", ".join(f"{r:.3f}" for r in steady)
        + ")"
    )
    best = max(ts_rates) / max(hand_rates)
    print(f"   best of each (least disturbed by other load): torchspec / hand-written = {best:.3f}")
    print(
        f"2. torchspec train / hand-written loop, whole call (setup, checkpoints, files) = "
        f"{statistics.median(whole):.3f}"
    )
    if have_lightning:
        print(f"3. torchspec train / Lightning Trainer.fit, whole call = {statistics.median(lightning):.3f}")
    else:
        print("3. lightning not installed (pip install lightning): the Lightning comparison is skipped")
    print(
        "4. options on / off, torchspec steady-state samples/s: "
        f"ema {statistics.median(costs['ema']):.3f}, "
        f"accumulate_steps 2 at batch {max(1, args.batch // 2)} {statistics.median(costs['accumulate']):.3f}"
    )


if __name__ == "__main__":
    main()
