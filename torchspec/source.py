"""Safe loading of spec files (YAML or JSON) into plain data, with the position of every node.

No Python object is ever built from a YAML tag: the YAML *event* stream is assembled into
dicts, lists and scalars with an explicit stack, so depth, size and alias expansion stay
bounded (:mod:`torchspec.source_yaml`). JSON is read by a small parser of its own
(:mod:`torchspec.source_json`), with the same positions and rules; both build a
:class:`~torchspec.document.Document` (re-exported here).
Every failure is a :class:`~torchspec.errors.SpecError` located at a 1-based line/column.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from torchspec.document import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Document,
    Format,
    Path,
    Pos,
    line_starts,
    offset_pos,
)
from torchspec.errors import SpecError
from torchspec.lookalikes import char_name, odd_space
from torchspec.source_yaml import YamlBuilder, kind_name

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Document",
    "Path",
    "Pos",
    "load_document",
    "parse_document",
    "parse_value",
]

_SHAPE = "a spec is a mapping with name, input and layers"


def load_document(path: str | os.PathLike[str]) -> Document:
    """Read a ``.yaml``, ``.yml`` or ``.json`` spec file (see :func:`parse_document`)."""
    file = os.fspath(path)
    ext = os.path.splitext(file)[1].lower()
    if ext not in (".yaml", ".yml", ".json"):
        shown = f"'{ext}'" if ext else "(none)"
        message = f"unsupported extension {shown}; use .yaml, .yml or .json"
        raise SpecError.single(file, message, line=1, col=1)
    try:
        info = os.stat(file)  # refuse before reading: directories, devices, huge files
        problem = "this is a directory" if stat.S_ISDIR(info.st_mode) else None
        problem = problem or (None if stat.S_ISREG(info.st_mode) else "this is not a regular file")
        if not problem and info.st_size > MAX_BYTES:
            problem = f"the file is {info.st_size} bytes; the limit is {MAX_BYTES}"
        if problem:
            raise SpecError.single(file, f"cannot read the spec: {problem}", line=1, col=1)
        with open(file, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        message = f"cannot read the spec: {exc.strerror or exc}"
        raise SpecError.single(file, message, line=1, col=1) from None
    return parse_document(raw, file, "json" if ext == ".json" else "yaml")


def parse_document(text: str | bytes, file: str = "<spec>", fmt: Format = "yaml") -> Document:
    """Parse ``text`` (bytes must be UTF-8) into a :class:`Document` holding a mapping."""
    if len(text) > MAX_BYTES:
        message = f"the spec is {len(text)} bytes; the limit is {MAX_BYTES}"
        raise SpecError.single(file, message, line=1, col=1)
    if isinstance(text, bytes):
        text = _decode(text, file, fmt)
    doc = Document(file, text.removeprefix("\ufeff"), None, {}, {}, fmt)
    _refuse_odd_space(doc)
    if fmt == "json":
        from torchspec.source_json import JsonParser  # YAML specs never load it

        doc.data = JsonParser(doc).parse()
    else:
        doc.data = YamlBuilder(doc).build()
    if not isinstance(doc.data, dict):
        kind = kind_name(doc.data)
        article = "an" if kind[0] in "aeiou" else "a"
        what = "empty" if doc.data is None else f"{article} {kind}, not a mapping"
        raise doc.error_at(doc.pos(()), f"the spec is {what}; {_SHAPE}")
    return doc


def parse_value(text: str, file: str) -> Any:
    """One YAML value (a ``--set`` value: scalar, list or mapping) read by the same bounded
    loader and rules as a spec file: YAML 1.2 numbers, no tags, size, depth and alias limits.
    An empty text is ``None``. Errors are located in ``file`` (e.g. ``--set KEY=VALUE``)."""
    if len(text) > MAX_BYTES:
        raise SpecError.single(file, f"the value is {len(text)} characters; the limit is {MAX_BYTES}")
    doc = Document(file, text, None, {}, {}, "yaml")
    _refuse_odd_space(doc)
    return YamlBuilder(doc).build()


def _refuse_odd_space(doc: Document) -> None:
    """A no-break (or other Unicode) space as indentation or separator: refused where it is."""
    found = odd_space(doc.text, separators=doc.fmt == "yaml")
    if found is not None:
        offset, char = found
        pos = offset_pos(line_starts(doc.text, doc.fmt), offset)
        where = (
            "indentation"
            if not doc.text[doc.text.rfind("\n", 0, offset) + 1 : offset].strip()
            else "a separator"
        )
        message = (
            f"{char_name(char)} at column {pos.col} as {where}: {doc.fmt.upper()} reads only ASCII spaces"
        )
        hint = "replace it with a plain space (pasted text often holds no-break spaces)"
        raise doc.error_at(pos, message, hint)


def _decode(raw: bytes, file: str, fmt: Format) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8")
        doc = Document(file, raw.decode("utf-8", "replace"), None, {}, {}, fmt)
        pos = offset_pos(line_starts(prefix, fmt), len(prefix))
        message = f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise doc.error_at(pos, message, "save the file as UTF-8") from None
