"""``torchspec schema [-o FILE]``: the JSON Schema (draft 2020-12) of the spec format, for editors.

Point an editor at it with ``# yaml-language-server: $schema=torchspec.schema.json`` at the top
of a spec; the repository's copy is written with ``torchspec schema -o torchspec.schema.json``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of the spec format (for editor completion and validation)",
        description="Print the JSON Schema (draft 2020-12) of the spec format, or write it to FILE.",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from torchspec.fileio import write_text
    from torchspec.schema import schema_text

    text = schema_text()
    if not args.output:
        sys.stdout.write(text)
        return 0
    write_text(args.output, text)  # atomic; a failure is a WriteError naming the file (exit 1)
    sys.stderr.write(f"wrote {args.output}\n")
    return 0
