"""The run folder (``train.output_dir``): one run at a time, never silently mixed or overwritten.

The rules (README, "Training"), all checked by :func:`open_run_dir` before any data or model is
loaded:

* The folder is created if needed and must be a writable directory: a temporary file is written
  and removed there (:func:`~torchspec.fileio.probe_writable`), and no name torchspec writes
  (:data:`RUN_FILES`) may be a directory.
* One run per folder at a time: ``.torchspec.lock`` in the folder is held with ``flock`` for the
  run's lifetime and names its holder (pid, host, start time, command). The kernel drops a flock
  when its process dies, so the file a ``kill -9`` leaves behind locks nothing: the next run takes
  it over and says so. A second run on a busy folder is an error naming the holder.
* A folder *holds a run* once it has a checkpoint, weights or metrics (:data:`RECORD_FILES`, as
  regular files: a symlink there is not ours and is replaced, never followed). Starting a fresh run
  there (no ``--resume``, or ``--resume auto`` with no last.ckpt) is an error naming the three
  choices: ``--resume auto``, another ``output_dir``, or ``--overwrite``, which removes the old
  run's files (only the names torchspec writes) once the new run's data, model and settings have
  loaded, just before its first write: a run refused on the way leaves the old one as it was.
  ``--resume PATH`` continues that checkpoint.
* Temporary files of our own naming left by a killed write are removed at start, under the lock.

Under DDP only rank 0, the writer, calls :func:`open_run_dir`; the others wait at a barrier.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from torchspec.errors import Problem
from torchspec.fileio import WriteError, probe_writable, remove_stale_temps

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RECORD_FILES", "RUN_FILES", "TENSORBOARD_DIR", "RunDir", "open_run_dir"]

RUN_FILES = ("spec.yaml", "metrics.csv", "last.ckpt", "best.ckpt", "model.safetensors", "curves.png")
TENSORBOARD_DIR = "tensorboard"  # train.log: [tensorboard] writes its event files there
_EVENT_FILE_RE = re.compile(r"^events\.out\.tfevents\.")
# Any of these makes a folder hold a run; spec.yaml alone (a run killed before it recorded anything)
# does not: it is written again from the spec by whatever run comes next.
RECORD_FILES = ("metrics.csv", "last.ckpt", "best.ckpt", "model.safetensors")
LOCK_NAME = ".torchspec.lock"
# Temporary names of earlier versions: "last.ckpt.k3j2h1g0.tmp" (mkstemp) and "metrics.csv.tmp".
_LEGACY_TEMP_RE = re.compile(r"^(?:(?:last|best)\.ckpt\.[a-z0-9_]{8}\.tmp|metrics\.csv\.tmp)$")

Say = Callable[[str], None]


def _is_file(path: str) -> bool:
    """A regular file, not followed through a link."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _error(folder: str, message: str, *hints: str) -> WriteError:
    return WriteError([Problem(folder, 0, 0, message, hints)])


class RunDir:
    """An output folder, locked by this process (rank 0) or not (other DDP ranks, which never write)."""

    def __init__(self, path: str, lock_fd: int | None = None) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.good: tuple[str, int] | None = None  # the last checkpoint this run wrote: (path, step)
        self.replacing = False  # --overwrite: the previous run's files go just before the first write

    def clear_previous(self, say: Say) -> None:
        """--overwrite: remove the previous run's files (links too, their targets never touched).

        Called under the lock just before this run writes its first file, after its data, model and
        settings were loaded and checked: a run refused on the way leaves the old run as it was.
        """
        if not self.replacing:
            return
        self.replacing = False
        removed = []
        for name in RUN_FILES:
            path = self.file(name)
            if _is_file(path) or os.path.islink(path):
                os.unlink(path)
                removed.append(name)
        if _remove_event_files(self.file(TENSORBOARD_DIR)):
            removed.append(f"{TENSORBOARD_DIR}/ event files")
        if removed:
            say(f"--overwrite: removed the previous run's {', '.join(removed)} from {self.path}")

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def kept(self) -> str:
        """Which checkpoint survives a failed write (they are atomic: a failed one changes nothing)."""
        resume = "--resume auto continues from it"
        if self.good is not None:
            path, step = self.good
            return f"the last good checkpoint is kept: {path} (step {step}); {resume}"
        if _is_file(self.file("last.ckpt")):
            return f"the last good checkpoint is kept: {self.file('last.ckpt')}; {resume}"
        return "no checkpoint of this run was written yet"

    @contextmanager
    def writing(self, path: str, step: int | None = None) -> Iterator[None]:
        """Write one of the run's files: a failure stops the run naming the file, the reason and the
        checkpoint kept. ``step`` marks ``path`` (last.ckpt) as the newest good checkpoint."""
        try:
            yield
        except WriteError as err:
            hints = ["training stopped", self.kept()]
            problems = [Problem(p.file, p.line, p.col, p.message, (*p.hints, *hints)) for p in err.problems]
            raise WriteError(problems) from None
        if step is not None and os.path.basename(path) == "last.ckpt":
            self.good = (path, step)

    def release(self) -> None:
        """Remove the lock file and let it go (a lock dropped by a dying process needs no cleanup)."""
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        lock = self.file(LOCK_NAME)
        with suppress(OSError):  # unlink while still locked, and only our own file
            if os.lstat(lock).st_ino == os.fstat(fd).st_ino:
                os.unlink(lock)
        os.close(fd)


def open_run_dir(output_dir: str, *, resume: str | None, overwrite: bool, say: Say) -> RunDir:
    """Make ``output_dir`` ready for a run, locked by this process; every refusal is a WriteError."""
    if overwrite and resume is not None:
        raise _error(output_dir, "--overwrite starts a new run and --resume continues one; choose one")
    _make_folder(output_dir)
    probe_writable(output_dir)
    for name in RUN_FILES:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            raise _error(
                path,
                f"{path} is a directory, where the run writes its {name}",
                "remove or rename it, or choose another output_dir",
            )
    run = RunDir(output_dir, _lock(output_dir, say))
    try:
        _check_not_mixed(run, resume, overwrite, say)
        remove_stale_temps(output_dir, say)
        _remove_legacy_temps(output_dir)
    except BaseException:
        run.release()
        raise
    return run


def _remove_event_files(folder: str) -> bool:
    """--overwrite: the previous run's TensorBoard event files go too (a new run's events mixed with
    an old run's in one folder would draw two runs as one). Only files named as TensorBoard names
    them; the folder itself goes if nothing else is left in it. A symlinked folder is not ours: the
    TensorBoard writer refuses it, and nothing in it is touched here."""
    if os.path.islink(folder) or not os.path.isdir(folder):
        return False
    removed = False
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if _EVENT_FILE_RE.match(name) and (_is_file(path) or os.path.islink(path)):
            os.unlink(path)
            removed = True
    with suppress(OSError):  # not empty: someone else's files stay
        os.rmdir(folder)
    return removed


def _make_folder(output_dir: str) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise _error(
            output_dir,
            f"output_dir {output_dir} is a file, not a folder",
            "choose another output_dir (--set train.output_dir=DIR), or move the file away",
        )
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if exc.errno in (errno.ENOTDIR, errno.EEXIST) else exc.strerror
        raise _error(
            output_dir,
            f"cannot create output_dir {output_dir}: {(reason or str(exc)).lower()}",
            "choose another output_dir (--set train.output_dir=DIR)",
        ) from None


def _check_not_mixed(run: RunDir, resume: str | None, overwrite: bool, say: Say) -> None:
    """A fresh run never lands on top of another one: resume it, go elsewhere, or --overwrite."""
    held = [name for name in RECORD_FILES if _is_file(run.file(name))]
    # --resume auto continues the folder's last.ckpt, if there is one; --resume PATH is an explicit
    # choice to continue that checkpoint's run here (the loop checks its settings against the spec).
    continuing = _is_file(run.file("last.ckpt")) if resume == "auto" else resume is not None
    if overwrite:
        run.replacing = True  # removed by clear_previous once this run is sure to start
        return
    if not held or continuing:
        return
    nothing = " (it has no last.ckpt to resume from)" if resume == "auto" else ""
    raise _error(
        run.path,
        f"output_dir {run.path} already holds a run ({', '.join(held)}){nothing}; "
        "a new run there would overwrite or mix with it",
        "continue that run: --resume auto",
        "keep it and start the new run elsewhere: --set train.output_dir=ANOTHER_DIR",
        "replace it: --overwrite (removes its files first)",
    )


def _remove_legacy_temps(folder: str) -> None:
    with suppress(OSError):
        for name in os.listdir(folder):
            if _LEGACY_TEMP_RE.match(name) and _is_file(os.path.join(folder, name)):
                with suppress(OSError):
                    os.unlink(os.path.join(folder, name))


# -- the lock ----------------------------------------------------------------------------------------


def _holder() -> bytes:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": " ".join([_program(), shlex.join(sys.argv[1:])]).strip(),
    }
    return (json.dumps(record) + "\n").encode()


def _program() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return "python -m torchspec" if name == "__main__.py" else name


def _describe(data: bytes) -> str:
    """'pid 123 on host h, started ... (command)' from a lock file's bytes; whatever is readable."""
    try:
        record: dict[str, Any] = json.loads(data.decode("utf-8", "replace"))
        assert isinstance(record, dict)
    except (ValueError, AssertionError):
        return "another process"
    text = f"pid {record.get('pid', '?')} on host {record.get('host', '?')}"
    if record.get("started"):
        text += f", started {record['started']}"
    if record.get("command"):
        text += f" ({record['command']})"
    return text


def _lock(folder: str, say: Say) -> int | None:
    """Hold ``folder/.torchspec.lock`` (flock, exclusive); a WriteError naming the holder if taken."""
    path = os.path.join(folder, LOCK_NAME)
    if fcntl is None:  # pragma: no cover
        say(f"notice: file locks are not available here: make sure no other run uses {folder}")
        return None
    for _ in range(100):  # a retry only when another process swapped the file under us
        try:  # O_NOFOLLOW: a link planted at the lock's name is never opened (nor written through)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP and os.path.islink(path):
                os.unlink(path)  # not ours: a lock file is always a regular file
                continue
            reason = (exc.strerror or str(exc)).lower()
            raise _error(path, f"cannot create the run's lock file {path}: {reason}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                message = f"{path} is not a regular file; torchspec keeps its run lock there"
                raise _error(path, message, "remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    say(f"notice: the file system of {folder} has no locks: make sure no other run uses it")
                    return fd
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise _error(
                    folder,
                    f"output_dir {folder} is in use by another run: {_describe(os.pread(fd, 4096, 0))}",
                    "wait for it to finish, or choose another output_dir (--set train.output_dir=DIR)",
                ) from None
            try:
                same = os.lstat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as we opened it: lock the new one
                os.close(fd)
                continue
            previous = os.pread(fd, 4096, 0)
            if previous.strip():  # its holder died (kill -9, power cut): the kernel freed the lock
                who = _describe(previous)
                say(f"notice: the run that held {path} ({who}) ended without releasing it; taking it over")
            with suppress(OSError):  # who holds it, for the message of a run that finds it taken
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder(), 0)
            return fd
        except BaseException:
            with suppress(OSError):
                os.close(fd)
            raise
    raise _error(path, f"cannot lock {path}: it keeps being replaced")  # pragma: no cover
