"""``torchspec draw SPEC -o model.svg|png``: the architecture as a picture, without torch.

Layers are boxes (type, key arguments, name), links carry the shapes inferred by arithmetic,
containers and blocks are frames; ``--depth N`` draws containers nested deeper than N as one box.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from torchspec.cli.args import add_set_argument, add_variant_argument, int_at_least, positive_int

__all__ = ["register", "run"]

BIG = 60  # boxes: above this, a full-depth picture gets a hint about --depth


def picture_path(text: str) -> str:
    """argparse type for ``-o``: the suffix says the format."""
    from torchspec.draw import picture_format

    if picture_format(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the output must be a .svg or .png file (e.g. model.svg); the suffix picks the format"
        )
    return text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "draw",
        help="draw the architecture as an SVG or PNG picture (shapes on the links; no torch)",
        description="Draw the model as a graph: layers as boxes with their type and key arguments, "
        "links labelled with the shapes inferred by arithmetic (torch is not imported), containers "
        "and blocks as frames, skips in orange. The output's suffix (.svg or .png) picks the format.",
    )
    parser.add_argument("spec", metavar="SPEC", help="a .yaml, .yml or .json spec file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=picture_path,
        metavar="FILE",
        help="the picture: FILE.svg or FILE.png",
    )
    parser.add_argument(
        "--depth",
        type=int_at_least(0),
        default=None,
        metavar="N",
        help="draw containers nested deeper than N as one box (top-level ones are at depth 1; "
        "0: every container is one box; default: no limit)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="write shapes for this batch size (default: the batch dimension is written N)",
    )
    add_variant_argument(parser)
    add_set_argument(parser, example="vars.width=32")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from torchspec.cli.build import check_output
    from torchspec.draw import draw
    from torchspec.infer import infer_shapes
    from torchspec.spec import load_spec

    spec = load_spec(args.spec, variant=args.variant, overrides=args.overrides)
    report = infer_shapes(spec, batch=args.batch or 1)  # SpecError: printed by the CLI, exit 1
    problem = check_output(args.output)
    if problem:
        sys.stderr.write(f"torchspec draw: error: {problem}\n")
        return 1
    layout = draw(report, args.output, depth=args.depth, batch_as_n=args.batch is None)
    boxes = sum(p.box.kind in ("layer", "merge", "block") for p in layout.boxes)
    size = f"{layout.width / 72:.1f} x {layout.height / 72:.1f} in"
    sys.stdout.write(
        f"wrote {args.output}: {report.name}, {boxes} boxes, {len(layout.frames)} frames, {size}\n"
    )
    if args.depth is None and boxes > BIG:
        hint = _overview(report, boxes)
        if hint is not None:
            sys.stdout.write(
                f"hint: {boxes} boxes make a tall picture; --depth {hint[0]} draws {hint[1]} (each container "
                f"nested deeper than {hint[0]} as one box)\n"
            )
    return 0


def _overview(report: Any, boxes: int) -> tuple[int, int] | None:
    """The deepest ``--depth`` that draws at most :data:`BIG` boxes, and how many it draws."""
    from torchspec.draw import build_diagram

    best = None
    for depth in range(8):
        count = build_diagram(report, depth).layer_count
        if count >= boxes or count > BIG:
            break
        best = (depth, count)
    return best
