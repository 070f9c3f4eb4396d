"""The .safetensors format read by hand, without torch: header checks and the tensor digest.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range in the data section, plus ``__metadata__``: string to string), then the data.
:func:`parse` checks every declared range against the file before anything is loaded, so a hostile
header costs at most its own (bounded) size.

:func:`digest` is what torchspec writes into the metadata (``torchspec.digest``) and checks on
load: sha256 over the other metadata entries (the embedded spec: a flipped bit there could change
a Dropout rate or an activation) and each tensor's name, dtype, shape and bytes, in sorted order.
A flipped bit anywhere in a tensor or the spec, or a renamed or reshaped tensor, changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from torchspec.errors import SpecError

__all__ = ["DIGEST_KEY", "DIGEST_PREFIX", "HEADER_LIMIT", "Entry", "Header", "digest", "parse"]

HEADER_LIMIT = 100_000_000  # safetensors' own limit on the JSON header
DIGEST_PREFIX = "sha256:"
DIGEST_KEY = "torchspec.digest"  # the metadata entry holding the digest (not itself digested)
ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte range in the data section
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, Entry]
    metadata: dict[str, str]
    data_start: int  # offset of the data section in the file


def _refuse(file: str, why: str) -> SpecError:
    return SpecError.single(
        file,
        f"cannot read {file}: truncated or not a safetensors file ({why})",
        hints=["pass a model.safetensors written by `torchspec train` or `torchspec build -o`"],
    )


def parse(data: bytes | memoryview, file: str) -> Header:
    """The header of the safetensors file whose bytes are ``data``, every range checked."""
    size = len(data)
    if size < 8:
        raise _refuse(file, f"{size} bytes, shorter than the 8-byte header length")
    length = int.from_bytes(data[:8], "little")
    if length > HEADER_LIMIT or 8 + length > size:
        raise _refuse(
            file, f"it declares a {length:,}-byte header but has {size - 8:,} bytes after the length"
        )
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
    except (ValueError, RecursionError) as exc:
        raise _refuse(file, f"the header is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise _refuse(file, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _refuse(file, "__metadata__ must map strings to strings")
    data_size = size - 8 - length
    tensors: dict[str, Entry] = {}
    covered = 0
    for name, info in header.items():
        entry = _entry(info)
        if entry is None:
            raise _refuse(file, f"tensor {name[:80]!r} has a malformed entry")
        numel = 1
        for dim in entry.shape:
            numel *= dim
        if (
            not entry.begin <= entry.end <= data_size
            or entry.end - entry.begin != numel * ITEMSIZE[entry.dtype]
        ):
            raise _refuse(
                file,
                f"tensor {name[:80]!r} ({entry.dtype} {list(entry.shape)}) declares bytes "
                f"{entry.begin}..{entry.end} but the data section has {data_size:,}",
            )
        tensors[name] = entry
        covered += entry.end - entry.begin
    if covered != data_size:  # safetensors packs tensors without gaps: anything else is not one
        raise _refuse(file, f"the tensors cover {covered:,} of the {data_size:,} data bytes")
    return Header(tensors, dict(metadata), 8 + length)


def _entry(info: Any) -> Entry | None:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        return None
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    ints = (
        isinstance(shape, list)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (*shape, *offsets))
    )
    if dtype not in ITEMSIZE or not ints:
        return None
    return Entry(dtype, tuple(shape), offsets[0], offsets[1])


def digest(data: bytes | memoryview, header: Header) -> str:
    """``sha256:<hex>`` over the metadata (but the digest itself) and each tensor's name, dtype,
    shape and bytes, in sorted order."""
    hasher = hashlib.sha256()
    metadata = {k: v for k, v in header.metadata.items() if k != DIGEST_KEY}
    hasher.update(json.dumps(metadata, sort_keys=True).encode() + b"\0")
    view = memoryview(data)
    for name in sorted(header.tensors):
        entry = header.tensors[name]
        described = json.dumps([name, entry.dtype, list(entry.shape), entry.end - entry.begin])
        hasher.update(described.encode() + b"\0")
        hasher.update(view[header.data_start + entry.begin : header.data_start + entry.end])
    return DIGEST_PREFIX + hasher.hexdigest()
