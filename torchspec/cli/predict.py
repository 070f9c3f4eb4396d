"""``torchspec predict MODEL INPUT``: outputs or class probabilities for a sample or a batch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from torchspec.cli.args import add_device_argument, positive_int


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a trained model on a .npy/.pt sample or batch, or a video or image file",
        description="Run a trained model (a .ckpt checkpoint or model.safetensors) on INPUT, a .npy "
        "or .pt file holding one sample or a batch, or a video (.mp4 .avi .mkv .webm .mov) or image file "
        "(sampled and transformed as validation does); print outputs or class probabilities.",
    )
    parser.add_argument("model", help="last.ckpt, best.ckpt or model.safetensors")
    parser.add_argument("input", help=".npy or .pt file: one sample or a batch; or a video or image file")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="classes to show per sample")
    add_device_argument(parser, default="cpu")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the digest check of a .safetensors file written elsewhere "
        "(checkpoint CRCs are always checked)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=256,
        metavar="N",
        help="samples per forward pass (default 256); the input is read N samples at a time",
    )
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        args.parser.error("--top must be >= 1")
    from torchspec.training.inference import predict

    result = predict(args.model, args.input, device=args.device, batch=args.batch, verify=not args.no_verify)
    rows: list[dict[str, Any]] = []
    for index in range(result.outputs.shape[0]):
        if result.probabilities is not None:
            probs = result.probabilities[index]
            k = min(args.top, probs.numel())
            values, classes = probs.topk(k)
            top = [{"class": int(c), "probability": float(p)} for p, c in zip(values, classes)]
            rows.append({"index": index, "top": top})
        else:
            rows.append({"index": index, "output": result.outputs[index].tolist()})
    if args.format == "json":
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("sample", justify="right")
    if result.probabilities is not None:
        for rank in range(len(rows[0]["top"]) if rows else 0):
            table.add_column(f"#{rank + 1} class (p)")
        for row in rows:
            cells = [f"{t['class']} ({t['probability']:.3f})" for t in row["top"]]
            table.add_row(str(row["index"]), *cells)
    else:
        table.add_column("output")
        for row in rows:
            table.add_row(str(row["index"]), json.dumps(row["output"]))
    Console().print(table)
    return 0
