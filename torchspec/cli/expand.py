"""``torchspec expand SPEC [--variant NAME] [--set KEY=VALUE ...]``: the spec with its vars, blocks,
repeats, conditions and expressions expanded, as plain YAML that torchspec accepts as it is."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from torchspec.cli.args import add_set_argument, add_variant_argument

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expand",
        help="print the spec with blocks, repeats, vars and expressions expanded",
        description="Validate the spec and print it fully expanded (plain layers: no vars, blocks, "
        "repeat, when or expressions) as YAML that `torchspec check` accepts and that gives the "
        "same table.",
    )
    parser.add_argument("spec", metavar="SPEC", help="a .yaml, .yml or .json spec file")
    add_variant_argument(parser)
    add_set_argument(parser, example="vars.width=32")
    parser.set_defaults(func=run, fast_exit=True)


def run(args: argparse.Namespace) -> int:
    from torchspec.dump import dump_spec
    from torchspec.spec import load_spec

    spec = load_spec(args.spec, variant=args.variant, overrides=args.overrides)
    said = [f"expanded from {args.spec}"]
    said += [f"--variant {args.variant}"] if args.variant else []
    said += [f"--set {arg}" for arg in args.overrides]
    sys.stdout.write(dump_spec(spec.document.data, header=" ".join(said)))
    return 0
