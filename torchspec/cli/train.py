"""``torchspec train [SPEC] [--set KEY=VALUE ...] [--device D] [--resume PATH|auto | --overwrite] [--quiet]``.

A fresh run into an output_dir that holds a run is refused unless ``--overwrite`` (see training.rundir).
"""

from __future__ import annotations

import argparse
import os
import sys

from torchspec.cli.args import (
    add_allow_code_argument,
    add_device_argument,
    add_set_argument,
    add_variant_argument,
)

DEFAULT_SPEC = "torchspec.yaml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a spec as its `train` section says",
        description="Train a spec as its `train` section says. Writes metrics.csv, curves.png, spec.yaml, "
        "last.ckpt, best.ckpt and model.safetensors to train.output_dir.",
    )
    parser.add_argument("spec", nargs="?", help=f"the spec file (default: ./{DEFAULT_SPEC})")
    add_set_argument(parser)
    add_variant_argument(parser)
    add_device_argument(parser, default=None)
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", metavar="PATH|auto", help="continue from a checkpoint; auto: OUTPUT_DIR/last.ckpt"
    )
    start.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an output_dir that holds a run, removing that run's files first",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary and errors")
    add_allow_code_argument(parser)
    parser.set_defaults(func=run, parser=parser)


def spec_path(args: argparse.Namespace) -> str:
    """SPEC, or ./torchspec.yaml; neither is a usage error (exit 2)."""
    if args.spec:
        return str(args.spec)
    if os.path.isfile(DEFAULT_SPEC):
        return DEFAULT_SPEC
    args.parser.error(f"no SPEC given and no {DEFAULT_SPEC} in the current directory")
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    path = spec_path(args)
    from torchspec.training.loop import Interrupted, train

    overrides = list(args.overrides)
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    try:
        train(
            path,
            overrides,
            resume=args.resume,
            quiet=args.quiet,
            overwrite=args.overwrite,
            allow_code=args.allow_code,
            variant=args.variant,
        )
    except Interrupted as stop:
        sys.stderr.write(f"{stop}\n")
        return stop.code
    return 0
