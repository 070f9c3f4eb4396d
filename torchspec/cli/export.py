"""``torchspec export SPEC|MODEL --to python|onnx|exported-program -o FILE``: leave torchspec."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from torchspec.cli.args import add_set_argument, add_variant_argument

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a spec or trained model as plain PyTorch source, ONNX or a torch.export program",
        description="Export SPEC (fresh weights) or MODEL (model.safetensors or a .ckpt: its trained "
        "weights go along) as a standalone Python file (--to python: FILE.py, weights in "
        "FILE.safetensors beside it for a MODEL), an ONNX file with a dynamic batch dimension "
        "(--to onnx: FILE.onnx) or a torch.export ExportedProgram (--to exported-program: FILE.pt2).",
    )
    parser.add_argument(
        "source", metavar="SPEC|MODEL", help="a .yaml/.yml/.json spec, or a .safetensors/.ckpt"
    )
    parser.add_argument("--to", required=True, choices=("python", "onnx", "exported-program"))
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the digest check of a .safetensors file written elsewhere",
    )
    add_variant_argument(parser)
    add_set_argument(parser, example="vars.width=32")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from torchspec.export import MODEL_SUFFIXES, TARGETS, export, missing_extra, summary

    suffix = TARGETS[args.to][2]
    if not args.output.lower().endswith(suffix):
        args.parser.error(f"--to {args.to} writes a {suffix} file; -o {args.output} does not end in {suffix}")
    is_model = args.source.lower().endswith(MODEL_SUFFIXES)
    if is_model and (args.variant or args.overrides):
        args.parser.error(
            "--variant and --set apply to a spec; a MODEL file holds the spec it was trained from"
        )
    reason = missing_extra(args.to)  # before anything is built: say it at once
    if reason is not None:
        sys.stderr.write(f"torchspec export: error: {reason}\n")
        return 1
    written = export(
        args.source,
        args.to,
        args.output,
        variant=args.variant,
        overrides=args.overrides,
        verify=not args.no_verify,
    )
    for path in written:
        detail = summary(args.to, path)
        sys.stdout.write(f"wrote {path}" + (f" ({detail})" if detail else "") + "\n")
    return 0
