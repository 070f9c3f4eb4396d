"""Opening a file that may come from a stranger, safely: only regular files, bounded sizes.

:func:`open_regular` refuses a directory, a FIFO, a device (``/dev/zero``, also behind a symlink),
a socket or a broken link with what it is, before reading a byte: the file is opened with
``O_NONBLOCK`` (opening a FIFO for reading would otherwise wait for a writer forever) and checked
with ``fstat`` on the opened descriptor, so what is checked is what is read. An empty file, or one
larger than the memory available to read it, is refused too. This module does not import torch.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import BinaryIO

from torchspec.errors import SpecError
from torchspec.memory import check_size

__all__ = ["describe_mode", "open_regular"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def describe_mode(mode: int) -> str:
    """What a non-regular file is, in words: ``a directory``, ``a FIFO (named pipe)``, ..."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def _link_note(file: str) -> str:
    if not os.path.islink(file):
        return ""
    try:
        return f" (a symbolic link to {os.readlink(file)})"
    except OSError:
        return " (a symbolic link)"


def open_regular(
    path: str | os.PathLike[str], what: str, hints: tuple[str, ...] = ()
) -> tuple[BinaryIO, int]:
    """Open ``path`` for binary reading if it is a non-empty regular file that fits in memory.

    Returns the open handle and its size in bytes. ``what`` names the kind of file in messages
    ("checkpoint", "safetensors file"): ``FILE: error: cannot read checkpoint FILE: it is a FIFO
    (named pipe), not a regular file``.
    """
    file = os.fspath(path)
    prefix = f"cannot read {what} {file}"
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(file, flags)
    except FileNotFoundError:
        if os.path.islink(file):
            target = os.readlink(file)
            why = f"it is a symbolic link to {target}, which does not exist"
            raise SpecError.single(file, f"{prefix}: {why}") from None
        raise SpecError.single(file, f"{prefix}: it does not exist", hints=hints) from None
    except OSError as exc:
        kind = None
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO without writer on some systems)
            with contextlib.suppress(OSError):
                kind = describe_mode(os.stat(file).st_mode)
        reason = f"it is {kind}, not a regular file" if kind else (exc.strerror or str(exc)).lower()
        raise SpecError.single(file, f"{prefix}: {reason}{_link_note(file)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError.single(
                file,
                f"{prefix}: it is {describe_mode(info.st_mode)}{_link_note(file)}, not a regular file",
                hints=hints,
            )
        if info.st_size == 0:
            raise SpecError.single(file, f"{prefix}: it is empty (0 bytes)", hints=hints)
        check_size(info.st_size, f"reading {what} {file} ({info.st_size:,} bytes)", file)
        if getattr(os, "O_NONBLOCK", 0):  # POSIX: reads block again (Windows has no O_NONBLOCK)
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise
