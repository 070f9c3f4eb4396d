"""``torchspec eval SPEC --checkpoint PATH``: loss and metrics of trained weights on the validation data."""

from __future__ import annotations

import argparse
import json


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
    parser.add_argument("--format", choices=("table", "json"), default="table")
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
    )
    if args.format == "json":
        print(json.dumps(result))
        return 0
    print(f"{result['split']} samples: {result['samples']}")
    print(f"loss:     {result['loss']:.4f}")
    if result["accuracy"] is not None:
        print(f"accuracy: {100 * result['accuracy']:.2f}%")
    return 0
