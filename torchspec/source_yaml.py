"""YAML text into plain data, with the position of every node (the YAML half of
:mod:`torchspec.source`).

No Python object is ever built from a YAML tag: the YAML *event* stream is assembled into dicts,
lists and scalars with an explicit stack, so depth, size and alias expansion stay bounded; scalars
are read by the YAML 1.2 core schema (:mod:`torchspec.scalars`). Every failure is a located
:class:`~torchspec.errors.SpecError`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import yaml

from torchspec import scalars
from torchspec.document import MAX_DEPTH, MAX_NODES, Document, Path, Pos, line_starts, offset_pos
from torchspec.errors import SpecError

__all__ = ["LOADER", "YamlBuilder", "kind_name"]

# libyaml's parser when PyYAML has it (the pure-Python one otherwise); read at each build
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


def kind_name(value: Any) -> str:
    """What a value is, in the words of messages: ``mapping``, ``list``, ``null``..."""
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


class YamlBuilder:
    """Builds plain data from YAML events with an explicit stack, counting every node."""

    def __init__(self, doc: Document) -> None:
        self.doc, self.count, self.root = doc, 0, None
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # value, size, height
        self.masked, self.mask, self.hidden = _mask_expressions(doc.text)

    def build(self, loader: Any = None) -> Any:
        doc, documents = self.doc, 0
        loader = LOADER if loader is None else loader
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
                return YamlBuilder(doc).build(yaml.SafeLoader)
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
            raise self.doc.error_at(pos, f"keys must be strings, not {kind_name(key)}", *hints)
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
