"""Safe loading of spec files (YAML or JSON) into plain data, with the position of every node.

No Python object is ever built from a YAML tag: the YAML *event* stream is assembled into
dicts, lists and scalars with an explicit stack, so depth, size and alias expansion stay
bounded. JSON is read by a small parser of its own (:mod:`torchspec.source_json`), with the same
positions and rules; both build a :class:`~torchspec.document.Document` (re-exported here).
Every failure is a :class:`~torchspec.errors.SpecError` located at a 1-based line/column.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import yaml

from torchspec import scalars
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
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STD = "tag:yaml.org,2002:"
# What PyYAML's terse syntax errors usually mean in a spec, and the fix.
_INDENT = (
    "check the indentation on this line and the one before: siblings start in the same column, "
    "and a layer's parameters go inside its mapping ({type: ..., kernel_size: 3} or indented under `- type:`)"
)
_YAML_CONTEXTS = {
    "while parsing a block collection": "in the list",
    "while parsing a block mapping": "in the mapping",
    "while parsing a flow sequence": "in the [...] list",
    "while parsing a flow mapping": "in the {...} mapping",
}
_YAML_FIXES = (
    ("expected '-' indicator", _INDENT),
    ("expected key", _INDENT),
    ("mapping values are not allowed", _INDENT + "; a value holding ': ' needs quotes"),
    ("could not find expected ':'", "a key needs a colon and a space after it: `key: value`"),
    ("expected ',' or ']'", "close the list with ']' and separate items with commas"),
    ("expected ',' or '}'", "close the mapping with '}' and separate entries with commas"),
)
_KINDS = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}


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
        doc.data = _YamlBuilder(doc).build()
    if not isinstance(doc.data, dict):
        kind = _kind(doc.data)
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
    return _YamlBuilder(doc).build()


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


def _kind(value: Any) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return [_clone(v) for v in value] if isinstance(value, list) else value


@dataclass
class _Frame:
    path: Path
    value: dict[str, Any] | list[Any]
    start: int  # node count before this collection
    anchor: str | None
    height: int = 0  # of the tallest child
    key: str | None = None  # a mapping's key that waits for its value


class _YamlBuilder:
    """Builds plain data from YAML events with an explicit stack, counting every node."""

    def __init__(self, doc: Document) -> None:
        self.doc, self.count, self.root = doc, 0, None
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # value, size, height
        self.masked, self.mask, self.hidden = _mask_expressions(doc.text)

    def build(self, loader: Any = _LOADER) -> Any:
        doc, documents = self.doc, 0
        bad = yaml.reader.Reader.NON_PRINTABLE.search(doc.text)
        if bad:
            pos = offset_pos(line_starts(doc.text, "yaml"), bad.start())
            raise doc.error_at(pos, f"character U+{ord(bad[0]):04X} is not allowed")
        try:
            for event in yaml.parse(self.masked, Loader=loader):
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        message = "a spec file holds one YAML document; this is a second"
                        raise doc.error_at(_pos(event.start_mark), message, "remove the second '---'")
                elif isinstance(event, yaml.NodeEvent):
                    self._node(event, _pos(event.start_mark))
                elif isinstance(event, yaml.CollectionEndEvent):
                    frame = self.stack.pop()
                    if frame.anchor is not None:  # remember the subtree's size once, for O(1) aliases
                        self.anchors[frame.anchor] = (frame.value, self.count - frame.start, frame.height + 1)
                    self._attach(frame.value, frame.height + 1)
        except yaml.MarkedYAMLError as exc:
            if "maximum nesting depth" in str(exc.problem) and loader is not yaml.SafeLoader:
                # Newer libyaml stops at a depth limit of its own while it scans ahead; PyYAML's
                # Python parser streams events, so our own limit reports the exact place instead.
                return _YamlBuilder(doc).build(yaml.SafeLoader)
            pos = _pos(exc.problem_mark or exc.context_mark)
            tabs = "\t" in (doc.line_text(pos.line) or "")
            hints = ["indent with spaces, not tabs"] if tabs else []
            if exc.context and exc.context_mark and exc.context_mark.line + 1 != pos.line:
                inside = _YAML_CONTEXTS.get(str(exc.context), str(exc.context))
                hints.append(f"{inside} that starts at line {exc.context_mark.line + 1}")
            hints += [fix for phrase, fix in _YAML_FIXES if phrase in str(exc.problem)]
            raise doc.error_at(pos, f"invalid YAML: {exc.problem or exc.context}", *hints) from None
        except yaml.YAMLError as exc:
            raise doc.error_at(Pos(1, 1), f"invalid YAML: {exc}") from None
        return self.root

    def _count(self, n: int, pos: Pos, alias: bool) -> None:
        self.count += n
        if self.count > MAX_NODES:
            what = f"has more than {MAX_NODES} nodes"
            if alias:
                what = f"expands to more than {MAX_NODES} nodes (alias bomb?)"
            raise self.doc.error_at(pos, f"document {what}")

    def _node(self, event: yaml.NodeEvent, pos: Pos) -> None:
        doc, parent = self.doc, self.stack[-1] if self.stack else None
        as_key = parent is not None and isinstance(parent.value, dict) and parent.key is None
        if isinstance(event, yaml.AliasEvent):
            value, height = self._alias(event.anchor or "", pos)
        elif isinstance(event, yaml.ScalarEvent):
            if as_key and event.tag is None and event.implicit[0] and event.value == "<<":
                message = "merge keys ('<<') are not supported"
                raise doc.error_at(pos, message, "write the keys out in full")
            self._count(1, pos, False)
            value, height = self._scalar(event, pos), 0
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1, 0)
        elif as_key:
            raise doc.error_at(pos, "keys must be strings, not collections")
        if parent is not None and as_key:
            self._key(value, event, parent, pos)
            return
        path: Path = ()
        if parent is not None:
            path = (*parent.path, len(parent.value) if parent.key is None else parent.key)
        doc.value_pos[path] = pos
        if isinstance(event, yaml.CollectionStartEvent):
            self._count(1, pos, False)
            if len(self.stack) >= MAX_DEPTH:
                raise doc.error_at(pos, f"nesting is deeper than {MAX_DEPTH} levels")
            is_map = isinstance(event, yaml.MappingStartEvent)
            if event.tag not in (None, "!", _STD + ("map" if is_map else "seq")):
                raise self._tag_error(event.tag, pos)
            empty: dict[str, Any] | list[Any] = {} if is_map else []
            self.stack.append(_Frame(path, empty, self.count - 1, event.anchor))
        else:
            self._attach(value, height)

    def _alias(self, name: str, pos: Pos) -> tuple[Any, int]:
        if name not in self.anchors:
            inside = any(frame.anchor == name for frame in self.stack)
            why = "is inside its own anchor" if inside else "is not defined before it"
            raise self.doc.error_at(pos, f"alias *{name} {why}")
        value, size, height = self.anchors[name]
        self._count(size, pos, True)  # O(1): sizes were counted when the anchor closed
        if len(self.stack) + height > MAX_DEPTH:
            message = f"nesting is deeper than {MAX_DEPTH} levels (via alias *{name})"
            raise self.doc.error_at(pos, message)
        return _clone(value), height

    def _key(self, key: Any, event: yaml.NodeEvent, frame: _Frame, pos: Pos) -> None:
        if not isinstance(key, str):
            text = event.value if isinstance(event, yaml.ScalarEvent) else ""
            hints = [f"quote it: '{text}'"] if text else []
            raise self.doc.error_at(pos, f"keys must be strings, not {_kind(key)}", *hints)
        path = (*frame.path, key)
        if key in frame.value:
            first = self.doc.key_pos[path].line
            raise self.doc.error_at(pos, f"duplicate key '{key}' (first at line {first})")
        self.doc.key_pos[path] = pos
        frame.key = key

    def _attach(self, value: Any, height: int) -> None:
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        parent.height = max(parent.height, height)
        if isinstance(parent.value, list):
            parent.value.append(value)
        elif parent.key is not None:
            parent.value[parent.key], parent.key = value, None

    def _scalar(self, event: yaml.ScalarEvent, pos: Pos) -> Any:
        """The value of a scalar by the YAML 1.2 core schema (:mod:`torchspec.scalars`)."""
        text, tag = event.value, event.tag
        if self.hidden and self.mask in text:  # put back what _mask_expressions hid, in order
            start, end = event.start_mark, event.end_mark
            lo = bisect_right(self.hidden, (start.index if start else 0, ""))
            hi = bisect_right(self.hidden, (end.index if end else len(self.doc.text), ""))
            for _, char in self.hidden[lo:hi]:
                text = text.replace(self.mask, char, 1)
        if tag is None:
            tag = scalars.resolve(text) if event.implicit[0] else scalars.STR  # quoted: a string
        elif tag == "!":
            tag = scalars.STR  # the non-specific tag: a string
        elif tag not in scalars.TAGS:
            raise self._tag_error(tag, pos)
        elif not scalars.matches(tag, text):
            message = f"'{text[:40]}' is not a valid !!{tag.removeprefix(_STD)}"
            raise self.doc.error_at(pos, message)
        try:
            return scalars.to_value(text, tag)  # timestamps, '=' and '<<' values stay text
        except scalars.OutOfRange as exc:
            raise self.doc.error_at(pos, str(exc)) from None

    def _tag_error(self, tag: str | None, pos: Pos) -> SpecError:
        shown = "!!" + tag.removeprefix(_STD) if tag and tag.startswith(_STD) else tag
        message = f"tags are not allowed; a spec holds plain data (found '{shown}')"
        return self.doc.error_at(pos, message)


_FLOW_CHARS = frozenset(",[]{}:#")


def _mask_expressions(text: str) -> tuple[str, str, list[tuple[int, str]]]:
    """``text`` with YAML's flow indicators inside each ``$(...)`` replaced by one private-use
    character, so that ``{out_channels: $(max(a, b))}`` parses unquoted in a flow mapping; the
    mask and the hidden (offset, character) pairs, in order, to put them back in each scalar.
    The text keeps its length: every position stays true.
    """
    start = text.find("$(")
    if start < 0:
        return text, "", []
    mask = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    chars, hidden = list(text), []
    i = start
    while i >= 0:
        depth, j = 0, i + 1
        while j < len(text) and text[j] not in "\r\n":
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        if depth == 0 and not (i > 0 and text[i - 1] == "$"):
            for k in range(i + 2, j):
                if text[k] in _FLOW_CHARS:
                    hidden.append((k, text[k]))
                    chars[k] = mask
        i = text.find("$(", i + 2)
    return "".join(chars), mask, hidden


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark else Pos(1, 1)
