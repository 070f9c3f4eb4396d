"""The dtype rule for data (train, eval and predict alike), in one place.

Inputs become float32, the model's dtype: float16/bfloat16/float64 by value, ``uint8`` (images)
scaled to [0, 1] by /255, bool and every other integer type by value. Targets: floats become
float32; bool and integer labels become int64 (a uint64 label above 2**63 - 1 is refused).
Complex numbers, strings, bytes, dates and Python objects are refused before anything runs.
Works on numpy arrays and torch tensors; torch is imported only for tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "INT64_MAX",
    "DTypeError",
    "dtype_problem",
    "id_values",
    "input_values",
    "largest",
    "target_values",
]

INT64_MAX = 2**63 - 1
_NAMES = {"c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects", "M": "dates",
          "m": "time deltas", "V": "records (raw bytes)"}  # fmt: skip


_REAL = ("f", "i", "u", "b")  # floats, signed and unsigned integers, bools


class DTypeError(ValueError):
    """Values of a dtype the data rule refuses (the message says which and why)."""


def _kind(dtype: Any) -> tuple[str, str]:
    """(kind, name): kind as numpy's ('f', 'i', 'u', 'b', 'c', ...) for numpy and torch dtypes."""
    if isinstance(dtype, np.dtype):
        return dtype.kind, str(dtype)
    import torch

    name = str(dtype).removeprefix("torch.")
    if dtype == torch.bool:
        return "b", name
    if dtype.is_complex:
        return "c", name
    if dtype.is_floating_point:
        return "f", name
    if dtype == torch.uint8 or name in ("uint16", "uint32", "uint64"):
        return "u", name
    if dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        return "i", name
    return "?", name


def dtype_problem(dtype: Any) -> str | None:
    """None if the data rule takes ``dtype``; else what it is, for "FILE holds ..." messages."""
    kind, name = _kind(dtype)
    if kind in _REAL:
        return None
    what = _NAMES.get(kind, "values of a type")
    return (
        f"{what} ({name}), which torchspec does not convert: inputs and targets must be real "
        "numbers or bools (e.g. x.astype(np.float32), y.astype(np.int64))"
    )


def input_values(value: Any) -> Any:
    """A sample or batch of inputs as float32 (same kind as given: numpy array or tensor)."""
    kind, name = _kind(value.dtype)
    if kind not in _REAL:
        raise DTypeError(f"inputs of {dtype_problem(value.dtype)}")
    if isinstance(value, np.ndarray):
        out = value.astype(np.float32)
        return out / np.float32(255) if name == "uint8" else out
    import torch

    out = value.to(torch.float32)
    return out / 255 if name == "uint8" else out


def id_values(value: Any) -> Any:
    """Token ids (for an ``input: {dtype: int64}`` spec): integers and bools as int64 by value;
    anything else unchanged, for the first-batch check to refuse by name."""
    kind, _ = _kind(value.dtype)
    if kind not in ("i", "u", "b"):
        return value
    if isinstance(value, np.ndarray):
        return value.astype(np.int64)
    import torch

    return value.to(torch.int64)


def target_values(value: Any) -> Any:
    """Targets: floats as float32, bool and integer labels as int64."""
    kind, name = _kind(value.dtype)
    if kind not in _REAL:
        raise DTypeError(f"targets of {dtype_problem(value.dtype)}")
    if isinstance(value, np.ndarray):
        if kind == "f":
            return value.astype(np.float32)
        if name == "uint64" and value.size and largest(value) > INT64_MAX:
            raise DTypeError(f"a uint64 label of {largest(value)}, above int64's maximum {INT64_MAX}")
        return value.astype(np.int64)
    import torch

    if kind == "f":
        return value.to(torch.float32)
    if name == "uint64" and value.numel() and largest(value) > INT64_MAX:
        raise DTypeError(f"a uint64 label of {largest(value)}, above int64's maximum {INT64_MAX}")
    return value.to(torch.int64)


def largest(values: Any) -> int:
    """The largest of integer ``values`` (an array or a tensor; torch has no max for uint64)."""
    array = values.numpy() if hasattr(values, "numpy") and not isinstance(values, np.ndarray) else values
    return int(np.max(array))
