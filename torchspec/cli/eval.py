"""``torchspec eval SPEC --checkpoint PATH``: loss and metrics of trained weights on the validation data."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from torchspec.cli.args import (
        add_allow_code_argument,
        add_device_argument,
        add_set_argument,
        add_variant_argument,
    )

    parser = subparsers.add_parser(
        "eval",
        help="loss and accuracy of a checkpoint on the validation data",
        description="Evaluate a checkpoint (.ckpt or model.safetensors) on the spec's validation data.",
    )
    parser.add_argument("spec", nargs="?", help="the spec file (default: ./torchspec.yaml)")
    parser.add_argument(
        "--checkpoint", required=True, metavar="PATH", help="last.ckpt, best.ckpt or .safetensors"
    )
    add_set_argument(parser)
    add_variant_argument(parser)
    add_device_argument(parser, default=None)
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="a test set to score instead (.npz of x and y, or a .pt dict of them; relative to the "
        "working directory); without it: train.test, else the validation data",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--confusion",
        metavar="FILE",
        help="also draw the confusion matrix (classifiers) to FILE: .png, .svg or .pdf",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the digest check of a .safetensors file written elsewhere "
        "(checkpoint CRCs are always checked)",
    )
    add_allow_code_argument(parser)
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from torchspec.cli.train import spec_path

    path = spec_path(args)
    from torchspec.training.inference import evaluate_checkpoint
    from torchspec.training.pictures import picture_format

    if args.confusion is not None:
        picture_format(args.confusion, "the confusion matrix")  # a wrong name before any work

    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device is not None else [])
    quiet = args.format == "json"
    say = (lambda _: None) if quiet else print
    result = evaluate_checkpoint(
        path,
        args.checkpoint,
        overrides,
        say=say,
        verify=not args.no_verify,
        allow_code=args.allow_code,
        variant=args.variant,
        data=args.data,
    )
    if args.confusion is not None:
        write_confusion(result, args.confusion)
    if args.format == "json":
        print(json.dumps(result))
        return 0
    for line in format_result(result):
        print(line)
    if args.confusion is not None:
        print(f"confusion matrix: {args.confusion}")
    return 0


def write_confusion(result: dict[str, Any], path: str) -> None:
    from torchspec.errors import SpecError
    from torchspec.training.pictures import confusion_figure, write_picture

    if not result.get("confusion"):
        message = "--confusion: this model is not a classifier (its loss has no classes): no confusion matrix"
        raise SpecError.single(path, message)
    accuracy = f", accuracy {100 * result['accuracy']:.1f}%" if result.get("accuracy") is not None else ""
    title = f"{result['split']} data: {result['samples']} samples{accuracy}"
    write_picture(confusion_figure(result["confusion"], result.get("class_names"), title), path)


def format_result(result: dict[str, Any]) -> list[str]:
    """eval's table: the scalars, then per-class accuracy and the confusion matrix (up to 20 classes)."""
    lines = [f"{result['split']} samples: {result['samples']}", f"{'loss:':<16}{result['loss']:.4f}"]
    for key, label in (("accuracy", "accuracy"), ("top5_accuracy", "top-5 accuracy")):
        if result.get(key) is not None:
            lines.append(f"{label + ':':<16}{100 * result[key]:.2f}%")
    for key, label in (("macro_f1", "macro-F1"), ("mae", "MAE"), ("rmse", "RMSE")):
        if result.get(key) is not None:
            lines.append(f"{label + ':':<16}{result[key]:.4f}")
    per_class = result.get("per_class_accuracy") or []
    if per_class and len(per_class) <= 20:
        shown = ["-" if v is None else f"{100 * v:.1f}%" for v in per_class]
        lines.append("per-class accuracy: " + ", ".join(f"{i}: {v}" for i, v in enumerate(shown)))
        confusion = result["confusion"]
        width = max(len(str(n)) for row in confusion for n in row) + 1
        lines.append("confusion (rows: true class, columns: predicted):")
        lines.append("      " + "".join(f"{i:>{width}}" for i in range(len(confusion))))
        lines += [f"  {i:>3} " + "".join(f"{n:>{width}}" for n in row) for i, row in enumerate(confusion)]
    return lines
