"""How the diagnostics word what they found, in the document's own format (YAML or JSON): a value
as it reads, a key and value as the user would write them, the layer a path is inside.

Shared by :mod:`torchspec.messages` (one message per kind of problem) and
:mod:`torchspec.value_rules` (the rule a value broke).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from torchspec.diagnose import DocumentLike, Path, _tag, describe, node_at, where

__all__ = [
    "as_string",
    "brief",
    "found_text",
    "is_yaml",
    "join_words",
    "key_value",
    "layer_example",
    "owner_of",
    "subject_of",
    "token_at",
]

_LAYER_EXAMPLES = {
    "yaml": "`- ReLU` or `- {type: Linear, out_features: 10}`",
    "json": '`"ReLU"` or `{"type": "Linear", "out_features": 10}`',
}


def brief(value: Any) -> str:
    """The found value as :func:`~torchspec.diagnose.describe` shows it, cut to 80 characters."""
    shown = describe(value)
    return shown if len(shown) <= 80 else f"{shown[:60]}...{shown[-12:]}"


def owner_of(data: Any, path: Path) -> tuple[str | None, Path]:
    """The innermost layer on ``path`` (a mapping with a ``type``, or a bare name in a list)."""
    node, owner = data, None
    owner_path: Path = ()
    for end, step in enumerate(path, 1):
        node = node_at(node, (step,))
        if (isinstance(node, dict) and _tag(node)) or (isinstance(step, int) and isinstance(node, str)):
            owner, owner_path = _tag(node), path[:end]
    return owner, owner_path


def subject_of(data: Any, path: Path) -> tuple[str, str, str | None]:
    """(label prefix like "Conv3d (layers[0]): ", field text like "kernel_size", owner type)."""
    owner, owner_path = owner_of(data, path[:-1] if path else path)
    if owner is None or not path:
        return "", where(path), None
    inner = path[len(owner_path) :]
    return f"{owner} ({where(owner_path)}): ", where(inner), owner


def token_at(doc: Any, path: Path) -> str | None:
    """The scalar the user typed at ``path`` (``no`` for a YAML false), when the text is known."""
    positions = getattr(doc, "value_pos", None)
    if not positions or path not in positions:
        return None
    pos = positions[path]
    line = doc.line_text(pos.line) if hasattr(doc, "line_text") else None
    if not line:
        return None
    match = re.match(r"[^\s,\]\}#]*", line[pos.col - 1 :])
    return match[0] if match else None


def is_yaml(doc: Any) -> bool:
    """The document is YAML (a document-like without a format counts as YAML)."""
    return getattr(doc, "fmt", "yaml") == "yaml"


def as_string(doc: Any, text: str) -> str:
    """``text`` quoted as a string of the document's format: ``'x'`` in YAML, ``"x"`` in JSON."""
    return f"'{text}'" if is_yaml(doc) else f'"{text}"'


def key_value(doc: Any, key: str, value: str) -> str:
    """``key: value`` as the user would write it in this document's format (a list item: the value)."""
    if not key.isidentifier():
        return f"`{value}`"
    return f"`{key}: {value}`" if is_yaml(doc) else f'`"{key}": {value}`'


def layer_example(doc: Any) -> str:
    """Two ways to write a layer (a bare name, a mapping), in the document's format."""
    return _LAYER_EXAMPLES["yaml" if is_yaml(doc) else "json"]


def found_text(doc: DocumentLike, path: Path, found: Any) -> str:
    """How the found value reads, naming a surprise (an empty value is null)."""
    if found is None and is_yaml(doc):
        token = token_at(doc, path)
        if token == "":
            return "no value (an empty value is null)"
    return brief(found)


def join_words(items: Sequence[str], word: str = "and") -> str:
    """``a, b and c`` (or ``word``)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
