"""The ``torchspec`` command line: one module per command, each a thin layer over the library.

Every command module defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Exit codes: 0 ok, 1 spec error (printed as FILE:LINE:COL: error: ...),
2 usage error. Commands import their library parts lazily so ``check`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from torchspec import __version__

__all__ = ["COMMANDS", "main"]

# Order is the order of `torchspec --help`.
COMMANDS = ("check", "build", "schema", "train", "eval", "predict", "bench")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchspec",
        description="Declarative PyTorch models: check shapes, build, train.",
    )
    parser.add_argument("--version", action="version", version=f"torchspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"torchspec.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"torchspec.cli.{name}":
                raise
            continue  # a command not written yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from torchspec.errors import SpecError

    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # `torchspec check ... | head`: the reader left; say nothing more and don't flush into it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
