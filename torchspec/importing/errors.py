"""What ``torchspec import`` says when a model cannot be written as a spec, and where it happened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["ImportFailure", "module_of", "source_line", "where"]


class ImportFailure(Exception):
    """The model (or the command line) holds something a spec cannot say; nothing is written."""

    def __init__(self, message: str, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hints = list(hints)

    def __str__(self) -> str:
        return self.message + "".join(f"\n  hint: {hint}" for hint in self.hints)


def module_of(node: Any) -> str:
    """``features.3 (InvertedResidual)``: the innermost module whose forward made ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<model> (its forward)"
    path, (_, cls) = list(stack.items())[-1]
    path = re.sub(r"@\d+$", "", path)
    return f"{path or '<model>'} ({getattr(cls, '__name__', cls)})"


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in \S+\n\s*(?P<code>[^\n]*)')


def source_line(node: Any) -> str | None:
    """``file:line: code`` of the model's own line that made ``node`` (torch's frames skipped)."""
    found = [m for m in _FRAME.finditer(node.stack_trace or "") if "/torch/" not in m["file"]]
    if not found:
        return None
    last = found[-1]
    return f"{last['file']}:{last['line']}: {last['code'].strip()}"


def where(node: Any) -> str:
    """The module and, when torch.fx recorded it, the source line of ``node``."""
    line = source_line(node)
    return module_of(node) + (f", {line}" if line else "")
