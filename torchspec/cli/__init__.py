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

__all__ = ["COMMANDS", "entry", "main"]

# Order is the order of `torchspec --help`.
COMMANDS = ("check", "build", "expand", "schema", "train", "eval", "predict", "bench")


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
    """Run one command; returns the exit code (argparse exits 2 by itself on usage errors)."""
    args = make_parser().parse_args(argv)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from torchspec.errors import SpecError

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


def entry() -> None:
    """The console script and ``python -m torchspec``: run a command and exit with its code.

    A command that only reads and prints (``check``) sets ``fast_exit``: once its output is
    flushed the process ends without the interpreter's teardown, which spends ~30 ms freeing
    pydantic's validators; ``check`` is meant to feel instant. Other commands exit normally.
    """
    args = make_parser().parse_args(sys.argv[1:])
    code = _run(args)
    if getattr(args, "fast_exit", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
