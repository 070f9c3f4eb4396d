"""``torchspec plot RUN_DIR [RUN_DIR ...] [-o compare.png] [--title T]``: the training curves of
runs overlaid in one picture (loss, accuracy or the task's metric, learning rate per epoch), read
from each run folder's metrics.csv. Torch-free."""

from __future__ import annotations

import argparse

DEFAULT_OUTPUT = "compare.png"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="compare the training curves of runs in one picture",
        description="Draw the training curves of one or more run folders (train's output_dir: "
        "their metrics.csv) in one picture: loss, accuracy (or MAE/RMSE) and learning rate per "
        "epoch, a colour per run, dashed train and solid val lines.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (train.output_dir)")
    parser.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"the picture to write: .png, .svg or .pdf (default: ./{DEFAULT_OUTPUT})",
    )
    parser.add_argument("--title", help="a title above the panels")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from torchspec.training.curves import compare_runs

    written = compare_runs(args.runs, args.output, args.title)
    print(f"wrote {written} ({len(args.runs)} run{'s' if len(args.runs) != 1 else ''})")
    return 0
