"""Reading arrays from files that may come from strangers: .npy, .npz and .pt.

Every read is bounded: the file must be a regular file (a FIFO, device, directory or dangling link is
refused by ``os.stat`` before anything opens it), a .npy header (alone, or inside a .npz) must
describe no more data than the file holds, a .npz member must fit in the memory available, and a .pt
file is loaded with ``weights_only=True`` and memory-mapped. Failures raise :class:`ArrayFileError`,
whose message says what the file is and why it is refused; callers locate it (spec or command line).

``.npy`` files come back as read-only ``np.memmap`` (bigger than RAM is fine: rows are copied out as
needed), ``.npz`` members as arrays in memory, ``.pt`` contents as (memory-mapped) tensors.
"""

from __future__ import annotations

import os
import re
import stat
import tokenize
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from torchspec.memory import available_bytes, format_bytes
from torchspec.training.dtypes import DTypeError, dtype_problem

__all__ = ["ArrayFileError", "load_pt", "open_array", "regular_file"]

MAX_HEADER = 10_000  # bytes of a .npy header numpy itself accepts by default


class ArrayFileError(ValueError):
    """A data file that cannot be used; the message names the file and the reason."""


def _kind_of(mode: int) -> str | None:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def regular_file(path: str, what: str) -> int:
    """The size of ``path`` if it is (a link to) a regular file; ArrayFileError saying what it is
    otherwise. Nothing is opened: a FIFO or a device is never read."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        raise ArrayFileError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise ArrayFileError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.stat(path)
    except OSError:
        target = os.readlink(path) if stat.S_ISLNK(link.st_mode) else path
        raise ArrayFileError(f"{what} file {path} is a symlink to {target}, which does not exist") from None
    kind = _kind_of(info.st_mode)
    if kind is not None:
        via = f" (a symlink to {os.path.realpath(path)})" if stat.S_ISLNK(link.st_mode) else ""
        raise ArrayFileError(f"{what} file {path}{via} is {kind}, not a regular file: give a data file")
    return info.st_size


def _open(path: str, what: str) -> IO[bytes]:
    """Open a regular file without ever blocking on a FIFO swapped in after the check."""
    regular_file(path, what)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    if _kind_of(os.fstat(fd).st_mode) is not None:
        os.close(fd)
        raise ArrayFileError(f"{what} file {path} changed into something other than a regular file")
    return os.fdopen(fd, "rb")


def _npy_header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran_order, dtype) of the .npy header at the start of ``f``."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)  # type: ignore[no-untyped-call]
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=MAX_HEADER)  # type: ignore[no-untyped-call]
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=MAX_HEADER)  # type: ignore[no-untyped-call]
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    # numpy tokenizes the header's text: a garbled one can raise TokenError (not a SyntaxError)
    except (ValueError, EOFError, SyntaxError, tokenize.TokenError) as exc:  # zip CRC errors: _npz
        raise ArrayFileError(f"{name} is not a valid .npy array: {_first_line(exc)}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ArrayFileError(
            f"{name} holds {dtype} values (Python objects or records), not plain numbers; "
            "loading objects would unpickle them, which is never done for a data file"
        )
    problem = dtype_problem(dtype)
    if problem is not None:
        raise ArrayFileError(f"{name} holds {problem}")
    if shape == ():
        raise ArrayFileError(f"{name} holds a single value (a 0-d array), not an array of samples")
    if any(size < 0 for size in shape):  # numpy's header reader lets a negative size through
        raise ArrayFileError(f"{name} is not a valid .npy array: its header declares shape {list(shape)}")
    return tuple(shape), bool(fortran), dtype


def _check_size(name: str, shape: tuple[int, ...], dtype: np.dtype[Any], held: int) -> int:
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > held:
        raise ArrayFileError(
            f"{name} is truncated or corrupt: its header declares shape {list(shape)} of {dtype} "
            f"({format_bytes(need)}) but only {format_bytes(held)} of data follow it"
        )
    return need


def _npy(path: str, what: str) -> np.ndarray[Any, Any]:
    with _open(path, what) as f:
        shape, fortran, dtype = _npy_header(f, f"{what} file {path}")
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
        need = _check_size(f"{what} file {path}", shape, dtype, size - offset)
        if need == 0:
            return np.empty(shape, dtype, order="F" if fortran else "C")
        # Memory-mapped, read-only: bigger than RAM is fine; rows are copied out when used.
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _npz(path: str, key: str | None, what: str) -> np.ndarray[Any, Any]:
    name = f"{what} file {path}"
    with _open(path, what) as f:
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ArrayFileError(f"{name} is not a valid .npz (zip) archive: {exc}") from None
        with archive:
            arrays = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            if key not in arrays:
                raise ArrayFileError(f"{path} has no array '{key}' (it has: {', '.join(arrays) or 'none'})")
            member = f"{name}, array '{key}'"
            info = archive.getinfo(f"{key}.npy")
            try:
                with archive.open(info) as stream:
                    shape, fortran, dtype = _npy_header(stream, member)  # type: ignore[arg-type]
                    need = _check_size(member, shape, dtype, info.file_size - stream.tell())
                    free = available_bytes("cpu")
                    if free is not None and need > free:
                        raise ArrayFileError(
                            f"{member} declares {list(shape)} of {dtype} ({format_bytes(need)}), more than "
                            f"the {format_bytes(free)} of memory available; save it as a .npy file, which is "
                            "memory-mapped instead of read"
                        )
                    raw = np.empty(need, np.uint8)
                    view, done = memoryview(raw), 0  # type: ignore[arg-type]
                    while done < need:
                        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
                        if not got:
                            raise EOFError("the member ends early")
                        done += got
                    while stream.read(1 << 20):  # the rest, so the archive's CRC check runs
                        pass
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                raise ArrayFileError(f"{member} is corrupt: {exc}") from None
    return raw.view(dtype).reshape(shape, order="F" if fortran else "C")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """torch's reason, without its advice to retry with weights_only=False (never, for a stranger's
    file): the first paragraph of the message that does not mention weights_only."""
    for paragraph in re.split(r"\n\s*\n", str(exc)):
        text = paragraph.strip()
        if text and "weights_only" not in text and not text.startswith("Check the documentation"):
            return text.splitlines()[0]
    return f"{type(exc).__name__} while unpickling (corrupt data)"


_BLOCKED = re.compile(r"GLOBAL ([\w.]+)")


def load_pt(path: str, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` of a regular file (no code runs); an ArrayFileError
    naming the blocked global for a file that refers to Python code, or why it is unreadable."""
    import pickle

    import torch

    name = f"{what} file {path}"
    regular_file(path, what)
    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except pickle.UnpicklingError as exc:
        found = _BLOCKED.search(str(exc))
        if found is None:  # not a blocked global: a corrupt or foreign file
            raise ArrayFileError(f"{name} is not a readable .pt file: {_reason(exc)}") from None
        raise ArrayFileError(
            f"{name} refers to Python code ({found.group(1)}), which loading with weights_only refuses: "
            "a data file holds only tensors. Do not load it with weights_only=False unless you "
            "wrote it yourself; save plain tensors (torch.save({'x': x, 'y': y}, path))"
        ) from None
    except Exception as exc:  # corrupt archives raise RuntimeError, OSError, EOFError, ...
        raise ArrayFileError(f"{name} is not a readable .pt file: {_reason(exc)}") from None
    return loaded


def _pt(path: str, key: str | None, what: str) -> Any:
    import torch

    name = f"{what} file {path}"
    loaded = load_pt(path, what)
    if isinstance(loaded, dict) and key is not None:
        if key not in loaded:
            raise ArrayFileError(f"{path} has no entry '{key}' (it has: {', '.join(map(str, loaded))})")
        loaded = loaded[key]
        name = f"{name}, entry '{key}'"
    if not isinstance(loaded, torch.Tensor):
        raise ArrayFileError(f"{name} holds a {type(loaded).__name__}, not a tensor")
    try:
        problem = dtype_problem(loaded.dtype)
    except DTypeError as exc:
        problem = str(exc)
    if problem is not None:
        raise ArrayFileError(f"{name} holds {problem}")
    if loaded.ndim == 0:
        raise ArrayFileError(f"{name} holds a single value (a 0-d tensor), not a tensor of samples")
    return loaded


def open_array(path: str, key: str | None, what: str) -> Any:
    """The array in ``path`` (``key`` picks a .npz array or a .pt dict entry): a read-only memmap,
    an in-memory array, or a tensor. ``what`` names its role in messages ("inputs", "input")."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _npy(path, what)
    if ext == ".npz":
        return _npz(path, key, what)
    if ext == ".pt":
        return _pt(path, key, what)
    regular_file(path, what)
    raise ArrayFileError(f"{what} file {path}: use a .npz, .npy or .pt file")
