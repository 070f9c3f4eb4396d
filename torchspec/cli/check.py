"""``torchspec check SPEC [SPEC ...]``: validate every spec and infer its shapes, without torch.

Every spec is checked even when an earlier one fails; each failure is printed to stderr as
``FILE:LINE:COL: error: ...`` and the exit status is 1 if any spec failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from torchspec.cli.args import add_set_argument, add_variant_argument, positive_int

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate specs and print every layer's output shape, parameters and MACs",
        description="Validate each spec and infer every layer's output shape by arithmetic "
        "(torch is not imported). Errors are printed as FILE:LINE:COL: error: MESSAGE; "
        "the exit status is 1 if any spec fails.",
    )
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="a .yaml, .yml or .json spec file")
    parser.add_argument("--batch", type=positive_int, default=1, metavar="N", help="batch size (default: 1)")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table per spec (default), or JSON: one object for one spec, a list for several "
        "(specs that fail are left out of it; their errors go to stderr)",
    )
    add_variant_argument(parser)
    add_set_argument(parser, example="vars.width=32")
    # check only reads and prints: the process may skip interpreter teardown (see cli.entry)
    parser.set_defaults(func=run, fast_exit=True)


def run(args: argparse.Namespace) -> int:
    from torchspec.errors import SpecError
    from torchspec.infer import ShapeReport, infer_shapes
    from torchspec.spec import load_spec

    reports: list[ShapeReport] = []
    failed = False
    for index, path in enumerate(args.specs):
        try:
            spec = load_spec(path, variant=args.variant, overrides=args.overrides)
            report = infer_shapes(spec, batch=args.batch)
            # the train section against the model and the run: errors raised, warnings kept
            warnings = [*(report.warnings or []), *(_train_problems(spec, report) if spec.train else [])]
        except SpecError as err:
            sys.stdout.flush()
            sys.stderr.write(f"{err}\n")
            sys.stderr.flush()
            failed = True
            continue
        reports.append(report)
        if warnings:  # printed like errors, but the spec is fine: the exit status stays 0
            from torchspec.errors import format_problems

            sys.stdout.flush()
            sys.stderr.write(format_problems(warnings) + "\n")
            sys.stderr.flush()
        if args.format == "table":
            from torchspec.report import render_table

            if index:
                sys.stdout.write("\n")
            render_table(report, sys.stdout)
    if args.format == "json":
        data: Any = [r.to_json() for r in reports]
        if len(args.specs) == 1:
            data = data[0] if data else None
        if data is not None:
            from torchspec.report import dumps_json

            sys.stdout.write(dumps_json(data))
    return 1 if failed else 0


def _train_problems(spec: Any, report: Any) -> list[Any]:
    """Warnings of the train section (:mod:`torchspec.training.run_checks`); its errors raised."""
    from torchspec.errors import SpecError
    from torchspec.training.config import TrainConfig
    from torchspec.training.run_checks import run_problems

    found = run_problems(spec.document, report, TrainConfig.model_validate(spec.train))
    errors = [p for p in found if p.severity == "error"]
    if errors:
        raise SpecError(errors)
    return found
