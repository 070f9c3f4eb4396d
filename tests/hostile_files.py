"""Crafted data files as a stranger might send them, each with words its refusal must hold.

Shared by tests/test_data_files.py (train.data) and tests/test_predict_input.py (predict's input).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

GOOD = np.arange(40, dtype=np.float32).reshape(10, 4)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _header(shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"\0" * 16) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _npz_with(members: dict[str, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _flip(data: bytes, at: float) -> bytes:
    raw = bytearray(data)
    raw[int(len(raw) * at)] ^= 0xFF
    return bytes(raw)


def _pt_bytes(value: object) -> bytes:
    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def _good_npz(compress: bool = False) -> bytes:
    return _npz_with({"x.npy": _npy_bytes(GOOD), "y.npy": _npy_bytes(np.arange(10))}, compress)


# name: (file name, bytes or a maker of the path, words the error must hold)
Maker = Callable[[Path], None]
FILES: dict[str, tuple[str, bytes | Maker, str]] = {
    "npy_truncated": ("a.npy", _npy_bytes(GOOD)[:-7], "truncated or corrupt"),
    "npy_header_1e12": ("a.npy", _header((10**12,)), "truncated or corrupt"),
    "npy_header_52GB": ("a.npy", _header((13_000_000_000,)), "truncated or corrupt"),
    "npy_header_2d_huge": ("a.npy", _header((10**6, 10**6)), "truncated or corrupt"),
    "npy_random_bytes": ("a.npy", os.urandom(300), "not a valid .npy array"),
    "npy_empty": ("a.npy", b"", "not a valid .npy array"),
    "npy_bad_header": ("a.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}    \n", "not a valid .npy array"),
    "npy_object": ("a.npy", _header((2,), "|O", b"\x80\x04N."), "Python objects"),
    "npy_zero_d": ("a.npy", _npy_bytes(np.float32(3.0)), "a 0-d array"),
    "npy_complex": ("a.npy", _npy_bytes(np.zeros((10, 4), np.complex64)), "complex numbers"),
    "npy_strings": ("a.npy", _npy_bytes(np.array([["a"] * 4] * 10)), "strings"),
    "npy_dates": ("a.npy", _npy_bytes(np.zeros((10, 4), "datetime64[s]")), "dates"),
    "npy_records": ("a.npy", _npy_bytes(np.zeros(10, [("a", "<f4"), ("b", "<i4")])), "records"),
    "npz_truncated": ("a.npz", _good_npz()[: len(_good_npz()) // 2], "not a valid .npz"),
    "npz_bit_flip": ("a.npz", _flip(_good_npz(), 0.3), "corrupt"),
    "npz_compressed_bit_flip": ("a.npz", _flip(_good_npz(True), 0.25), "corrupt"),
    "npz_random_bytes": ("a.npz", os.urandom(500), "not a valid .npz"),
    "npz_member_1e12": (
        "a.npz",
        _npz_with({"x.npy": _header((10**12,)), "y.npy": _npy_bytes(np.arange(10))}),
        "truncated or corrupt",
    ),
    "npz_member_bomb": (
        "a.npz",
        _npz_with({"x.npy": _header((2**40,), data=b""), "y.npy": _npy_bytes(np.arange(10))}, True),
        "truncated or corrupt",
    ),
    "npz_member_object": ("a.npz", _npz_with({"x.npy": _header((2,), "|O"), "y.npy": b""}), "Python objects"),
    "pt_blocked_global": ("a.pt", _pt_bytes({"x": os.system}), "posix.system"),
    "pt_blocked_class": ("a.pt", _pt_bytes({"x": zipfile.ZipInfo("a")}), "zipfile.ZipInfo"),
    "pt_random_bytes": ("a.pt", os.urandom(300), "not a readable .pt file"),
    "pt_truncated": ("a.pt", _pt_bytes(torch.zeros(10, 4))[:200], "not a readable .pt file"),
    "pt_complex": ("a.pt", _pt_bytes(torch.zeros(10, 4, dtype=torch.complex64)), "complex numbers"),
    "pt_list": ("a.pt", _pt_bytes([1, 2]), "holds a list"),
    "pt_zero_d": ("a.pt", _pt_bytes(torch.tensor(1.0)), "0-d tensor"),
    "link_dev_zero": ("a.npy", lambda p: p.symlink_to("/dev/zero"), "character device"),
    "link_dev_null_pt": ("a.pt", lambda p: p.symlink_to("/dev/null"), "character device"),
    "link_dangling": ("a.npy", lambda p: p.symlink_to(p.parent / "gone.npy"), "which does not exist"),
    "directory": ("a.npy", lambda p: p.mkdir(), "is a directory"),
    "directory_npz": ("a.npz", lambda p: p.mkdir(), "is a directory"),
    "fifo": ("a.npy", lambda p: os.mkfifo(p), "FIFO"),
    "fifo_pt": ("a.pt", lambda p: os.mkfifo(p), "FIFO"),
    "missing": ("a.npy", lambda p: None, "does not exist"),
}


def make(folder: Path, name: str) -> tuple[Path, str]:
    """Create the crafted file ``name`` in ``folder``; (its path, words its refusal must hold)."""
    file, content, words = FILES[name]
    path = folder / file
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path, words
