"""``torchspec bench SPEC [--device D] [--batch N] [--steps K] [--warmup W] [--mode train|infer]
[--format table|json] [--set KEY=VALUE ...]``: the model's speed on random data of its input."""

from __future__ import annotations

import argparse
import json
from typing import Any

from torchspec.cli.args import (
    add_device_argument,
    add_set_argument,
    add_variant_argument,
    int_at_least,
    positive_int,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time the model's train or inference steps on random data",
        description="Build the spec's model, warm up, time K steps on random batches of its input "
        "(made once, on the device) and print samples/s, step time (median, p90), peak memory and "
        "achieved MACs/s. The train section's precision, channels_last and compile apply.",
    )
    parser.add_argument("spec", help="the spec file")
    add_device_argument(parser, default="auto")
    parser.add_argument("--batch", type=positive_int, help="batch size (default: train.batch_size or 32)")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps (default: 20)")
    parser.add_argument("--warmup", type=int_at_least(0), default=5, help="untimed steps first (default: 5)")
    parser.add_argument("--mode", choices=("train", "infer"), default="train", help="default: train")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    add_set_argument(parser, example="train.precision=bf16")
    add_variant_argument(parser)
    parser.set_defaults(func=run, parser=parser)


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:,.2f} {prefix}{unit}"
    return f"{value:,.2f} {unit}"


def run(args: argparse.Namespace) -> int:
    from torchspec.benchmark import benchmark

    result = benchmark(
        args.spec,
        device=args.device,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        mode=args.mode,
        overrides=args.overrides,
        variant=args.variant,
    )
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    options = [result.precision] + (["channels_last"] if result.channels_last else [])
    options += ["compile"] if result.compile else []
    table = Table(title=f"{result.name}: {result.mode} on {result.device}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("batch", result.batch),
        ("options", ", ".join(options)),
        ("timed steps (after warm-up)", f"{result.steps} (after {result.warmup})"),
        ("samples/s", f"{result.samples_per_s:,.1f}"),
        ("step time, median", f"{result.step_ms_median:,.2f} ms"),
        ("step time, p90", f"{result.step_ms_p90:,.2f} ms"),
        (f"peak memory ({result.peak_memory_kind})", _si(result.peak_memory_bytes, "B")),
        ("MACs per sample (forward)", _si(result.macs_per_sample, "MAC")),
        (
            "achieved MACs/s" + (" (x3: forward + backward)" if result.macs_factor == 3 else ""),
            _si(result.macs_per_s, "MAC/s"),
        ),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console = Console(highlight=False)
    console.print(table)
    for note in result.notes:
        console.print(f"notice: {note}", markup=False)
    return 0
