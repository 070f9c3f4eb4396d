"""The ``torchspec`` command line: one module per command, each a thin layer over the library.

Every command module defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Exit codes: 0 ok, 1 spec error (printed as FILE:LINE:COL: error: ...),
2 usage error. Commands import their library parts lazily so ``check`` never loads torch.

Output that cannot be written is an error too (exit 1, one line on stderr when stderr works), never
a traceback nor a silent exit 0: stdout on a full disk or ``/dev/full``, a read-only or closed
descriptor. Only a reader that left (``| head``, EPIPE) ends quietly with the command's own code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from torchspec import __version__

__all__ = ["COMMANDS", "OutputError", "entry", "main"]

# Order is the order of `torchspec --help`.
COMMANDS = (
    "check",
    "build",
    "expand",
    "schema",
    "draw",
    "export",
    "import",
    "train",
    "eval",
    "predict",
    "plot",
    "bench",
)
# a command whose module name differs from it ("import" is a Python keyword)
MODULES = {"import": "import_spec"}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchspec",
        description="Declarative PyTorch models: check shapes, build, train; draw, export and import models.",
    )
    parser.add_argument("--version", action="version", version=f"torchspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module_name = f"torchspec.cli.{MODULES.get(name, name)}"
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command not written yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (argparse exits 2 by itself on usage errors)."""
    args = make_parser().parse_args(argv)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from torchspec.cli.args import device_problem
    from torchspec.errors import SpecError

    device = getattr(args, "device", None)
    if device is not None:  # every command's --device, before it becomes a train.device override
        problem = device_problem(device)
        if problem is not None:
            sys.stderr.write(f"torchspec {args.command}: error: argument --device: {problem}\n")
            return 1
        args.device = device.strip()

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
        _silence(1)
        return 0
    except OutputError as err:
        _complain(str(err))
        return 1


class OutputError(OSError):
    """stdout or stderr refused a write (full disk, ``/dev/full``, a closed or read-only descriptor)."""

    def __str__(self) -> str:
        return str(self.strerror)  # the message alone, without OSError's "[Errno N]"


class _Guarded:
    """``sys.stdout``/``sys.stderr`` as the commands see them: a write the OS refuses becomes an
    :class:`OutputError` naming the stream, and is remembered (``failed``), so the command ends with
    exit 1 even where some code swallowed the error. EPIPE stays a BrokenPipeError."""

    def __init__(self, stream: Any, name: str) -> None:
        self._stream = stream
        self.name = name
        self.failed: OutputError | None = None

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            from torchspec.fileio import failure_reason

            error = OutputError(exc.errno, f"cannot write to {self.name}: {failure_reason(exc)}")
            self.failed = self.failed or error
            raise error from None

    def write(self, text: str) -> int:
        return int(self._call("write", text))

    def writelines(self, lines: Any) -> None:
        self._call("writelines", lines)

    def flush(self) -> None:
        self._call("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _open_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _silence(fd: int) -> None:
    """Point ``fd`` at /dev/null: what is still buffered for it then goes nowhere, quietly."""
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _complain(message: str) -> None:
    """``torchspec: error: MESSAGE`` on stderr, if stderr can take it."""
    with suppress(OSError, AttributeError, ValueError):
        sys.stderr.write(f"torchspec: error: {message}\n")
        sys.stderr.flush()


def _guard_streams() -> tuple[_Guarded, _Guarded] | None:
    """Guard stdout and stderr; None (after saying so on stderr) if stdout is closed.

    A closed descriptor 0, 1 or 2 is first pointed at /dev/null, so no file this process opens
    takes its number (a C library's stray print would otherwise land in a checkpoint).
    """
    closed = [fd for fd in (0, 1, 2) if not _open_fd(fd)]
    for fd in closed:
        _silence(fd)
    if 1 in closed or sys.stdout is None:
        if 2 not in closed and sys.stderr is not None:
            _complain("stdout is closed, so nothing could be printed; redirect it (> FILE, > /dev/null)")
        return None
    # a stderr closed at start now writes to /dev/null: errors go unsaid, exit codes stay true
    err_stream = sys.stderr if sys.stderr is not None else open(os.devnull, "w")  # noqa: SIM115
    out, err = _Guarded(sys.stdout, "stdout"), _Guarded(err_stream, "stderr")
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    return out, err


def _finish(code: int, streams: tuple[_Guarded, _Guarded]) -> int:
    """Flush stdout and stderr; a failure now or earlier turns the exit code into 1."""
    for stream in streams:
        try:
            stream.flush()
        except BrokenPipeError:
            _silence(stream.fileno())
        except OutputError:
            pass
    for stream in streams:
        if stream.failed is None:
            continue
        with suppress(OSError, ValueError):
            _silence(stream.fileno())  # the interpreter's last flush of it must not fail again
        if stream.name == "stdout" and code == 0:  # not said yet: the failure came with the last flush
            _complain(str(stream.failed))
        if code == 0:
            code = 1
    sys.stdout, sys.stderr = streams[0]._stream, streams[1]._stream
    return code


def entry() -> None:
    """The console script and ``python -m torchspec``: run a command and exit with its code.

    A command that only reads and prints (``check``) sets ``fast_exit``: once its output is
    flushed the process ends without the interpreter's teardown, which spends ~30 ms freeing
    pydantic's validators; ``check`` is meant to feel instant. Other commands exit normally.
    """
    streams = _guard_streams()
    if streams is None:
        raise SystemExit(1)
    try:
        args = make_parser().parse_args(sys.argv[1:])
    except SystemExit as done:  # --help, --version (0) and usage errors (2) print, then exit
        raise SystemExit(_finish(done.code if isinstance(done.code, int) else 1, streams)) from None
    code = _finish(_run(args), streams)
    if getattr(args, "fast_exit", False):
        os._exit(code)
    raise SystemExit(code)
