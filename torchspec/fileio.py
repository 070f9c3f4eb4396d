"""Writing files safely: every file torchspec writes goes through :func:`atomic_write`.

The rule (see README, "Safety"): a file is written to a fresh, uniquely named temporary file in the
same folder, flushed and fsynced, then renamed into place. ``os.replace`` replaces whatever is at
the destination, a symlink included, and never follows it, so a planted ``spec.yaml ->
~/my_spec.yaml`` link is replaced, not written through; the temporary name is created with
``O_EXCL`` by ``mkstemp``, so a planted ``metrics.csv.tmp`` link is never opened either. A kill or
a full disk at any moment leaves the old file or the new one, never a torn one, and a failed write
removes its temporary file and raises a :class:`~torchspec.errors.SpecError` naming the file and
the reason ("disk full" for ENOSPC).

Temporary files carry :data:`TEMP_MARK` in their name, so temporaries left by a killed process can
be recognised (and only ours are ever removed) by :func:`stale_temps`/:func:`remove_stale_temps`.

This module does not import torch.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from torchspec.errors import Problem, SpecError

__all__ = [
    "TEMP_MARK",
    "WriteError",
    "atomic_path",
    "atomic_write",
    "default_mode",
    "failure_reason",
    "is_write_failure",
    "probe_writable",
    "remove_stale_temps",
    "stale_temps",
    "write_bytes",
    "write_failure",
    "write_text",
]

TEMP_MARK = ".torchspec-tmp"
# ".<name>.torchspec-tmp.<random>": hidden, and never mistaken for a file the user wrote.
_TEMP_RE = re.compile(r"^\.(?P<target>.+)" + re.escape(TEMP_MARK) + r"\.[A-Za-z0-9_]+$")


class WriteError(SpecError):
    """A file could not be written; the message names the file and why."""


_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "a directory is in the way",
    errno.ENOTDIR: "a file is in the way of the folder",
    errno.ENOENT: "the folder does not exist",
    errno.EFBIG: "file too large",
    errno.EBADF: "not open for writing (closed?)",
}


# Writers that are not Python report the OS's error in their text: safetensors says "I/O error: No
# space left on device (os error 28)", torch's zip writer only "unexpected pos 32704 vs 32640".
_OS_ERROR_RE = re.compile(r"\(os error (\d+)\)")


def _errno_of(exc: BaseException) -> int | None:
    if isinstance(exc, OSError):
        return exc.errno
    found = _OS_ERROR_RE.search(str(exc))
    return int(found.group(1)) if found else None


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised while writing a file, is the OS refusing the write (not a bug)."""
    return isinstance(exc, OSError) or _errno_of(exc) is not None or "unexpected pos" in str(exc)


def failure_reason(exc: BaseException) -> str:
    """Why a write failed, in words: "disk full" for ENOSPC, whatever the writer said it as."""
    code = _errno_of(exc)
    if code in _REASONS:
        return _REASONS[code]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if code is not None:
        return os.strerror(code).lower()
    # torch's own writer reports a full disk as "unexpected pos 32704 vs 32640"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "disk full (the writer stopped short)" if "unexpected pos" in text else text


def write_failure(path: str, exc: BaseException, *, kept: str | None = None) -> WriteError:
    """The error for a failed write of ``path``: which file, why, and what was kept."""
    code = _errno_of(exc)
    reason = failure_reason(exc)
    hints = ["nothing was left half-written: the file is as it was before this write"]
    if kept:
        hints.append(kept)
    if code in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in str(exc):
        hints.append("free some space (or choose another output_dir) and run the command again")
    return WriteError([Problem(path, 0, 0, f"cannot write {path}: {reason}", tuple(hints))])


def default_mode(path: str | os.PathLike[str]) -> None:
    """Give a file we wrote the mode the user's umask says (0644 usually), like any new file.

    ``mkstemp`` creates files 0600, which would hide weights and checkpoints from the rest of a
    team on a shared machine.
    """
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a fresh temporary path beside ``path``; on success it is renamed onto ``path``.

    For writers that want a path rather than a handle (safetensors' ``save_file``). The temporary
    file exists (empty, created with O_EXCL) when the block starts. On any exception the temporary
    file is removed; OSErrors become a :class:`WriteError` naming ``path``.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}{TEMP_MARK}.", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise write_failure(target, exc) from None
    try:
        yield tmp
        default_mode(tmp)
        os.replace(tmp, target)  # replaces a link at `target`, never follows it
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        cause = getattr(exc, "_torchspec_os_error", None) or exc  # the OS's own error, when recorded
        if not isinstance(exc, WriteError) and is_write_failure(cause):
            raise write_failure(target, cause) from None
        raise
    _fsync_folder(folder)


class _Recording:
    """A file handle that remembers the first OSError of a write: torch's zip writer swallows it
    and raises only "unexpected pos 32704 vs 32640", so the real reason (ENOSPC) would be lost."""

    def __init__(self, handle: IO[Any]) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **open_args: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` when the block ends.

    The data is flushed and fsynced before the rename, and the folder after it, so the new file
    survives a power cut once this returns.
    """
    with atomic_path(path) as tmp, open(tmp, mode, **open_args) as handle:
        recording = _Recording(handle)
        try:
            yield recording  # type: ignore[misc]
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException as exc:
            if recording.error is not None and not isinstance(exc, OSError):
                exc._torchspec_os_error = recording.error  # type: ignore[attr-defined]
            raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def probe_writable(folder: str | os.PathLike[str]) -> None:
    """Create, write and remove a temporary file in ``folder``: a WriteError now if nothing can be
    written there (read-only mount, no permission, a full disk), before any work is done."""
    folder = os.fspath(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".probe{TEMP_MARK}.", dir=folder)
    except OSError as exc:
        raise _folder_failure(folder, exc) from None
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as exc:
        raise _folder_failure(folder, exc) from None
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)


def _folder_failure(folder: str, exc: OSError) -> WriteError:
    reason = failure_reason(exc)
    hints = ["nothing was written; choose another output_dir, or make this one writable"]
    return WriteError([Problem(folder, 0, 0, f"cannot write files in {folder}: {reason}", tuple(hints))])


def stale_temps(folder: str | os.PathLike[str]) -> list[str]:
    """Temporary files of our own naming in ``folder`` (left by a killed write)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names if _TEMP_RE.match(n))


def remove_stale_temps(folder: str | os.PathLike[str], say: Callable[[str], None] | None = None) -> list[str]:
    """Remove our stale temporary files from ``folder`` (never another file); returns what went.

    Call it only while holding the folder's run lock, so no live writer's temporary is removed.
    """
    removed = []
    for path in stale_temps(folder):
        try:
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue
    if removed and say is not None:
        say(f"removed {len(removed)} temporary file(s) left by an interrupted write in {folder}")
    return removed
