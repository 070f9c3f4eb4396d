"""The expander's ground floor: where each expanded value came from, how many nodes have been made,
the problems found, and values with their ``$`` expressions evaluated.

:class:`Values` is the base of :mod:`torchspec.expand`'s expander (layers, blocks, repeat, when)
and what :mod:`torchspec.wiring` calls back into. Positions: each expanded path (``out``) gets the
position of the path it was written at (``origin``; inside a block: the block's definition), so
later problems (schema, shapes) are located through the expanded document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torchspec.diagnose import quote
from torchspec.errors import Note, Problem, SpecError
from torchspec.expr import ExprError, size
from torchspec.source import Document, Path, Pos
from torchspec.template import render

__all__ = ["FAILED", "MAX_EXPANDED", "Notes", "Values"]

MAX_EXPANDED = 200_000  # nodes (mappings, lists, scalars) of an expanded spec
FAILED: Any = object()  # a value whose expression failed (already reported)
Notes = tuple[Note, ...]


class Values:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.value_pos: dict[Path, Pos] = {}  # expanded path -> where its value was written
        self.key_pos: dict[Path, Pos] = {}
        self.notes: dict[Path, Notes] = {}  # expanded path -> the block uses it sits in
        self.overrides: dict[Path, str] = {}  # expanded path -> the --set argument that set it
        self.problems: list[Problem] = []
        self.count = 0  # nodes made so far (the bound: MAX_EXPANDED)

    # -- positions, counting, problems -------------------------------------------------------

    def place(self, origin: Path, out: Path | None) -> None:
        self.count += 1
        if self.count > MAX_EXPANDED:
            message = f"the expanded spec has more than {MAX_EXPANDED:,} nodes; that is the limit"
            hint = "lower a repeat count, or nest fewer repeats"
            raise SpecError([self.doc.problem(origin, message, [hint])])
        if out is None:
            return
        pos = self.doc.value_pos.get(origin)
        if pos is not None:
            self.value_pos[out] = pos
        if origin in self.doc.overrides:
            self.overrides[out] = self.doc.overrides[origin]

    def place_key(self, origin: Path, out: Path, key: str) -> None:
        pos = self.doc.key_pos.get((*origin, key))
        if pos is not None:
            self.key_pos[(*out, key)] = pos

    def problem(self, origin: Path, message: str, hints: list[str], notes: Notes, key: bool = False) -> None:
        problem = self.doc.problem(origin, message, hints, key=key)
        self.problems.append(replace(problem, notes=notes) if notes else problem)

    def expr_problem(self, origin: Path, text: str, exc: ExprError, notes: Notes) -> None:
        doc, pos = self.doc, self.doc.value_pos.get(origin)
        message = f"{exc.message} (in {quote(text, 50)})"
        hints = [exc.hint] if exc.hint else []
        if pos is None or doc.override_of(origin) is not None:
            return self.problem(origin, message, hints, notes)
        line = doc.line_text(pos.line) or ""
        quoted = line[pos.col - 1 : pos.col] in ("'", '"')
        at = Pos(pos.line, pos.col + exc.offset + quoted)
        self.problems.append(replace(doc.problem_at(at, message, hints), notes=notes))

    # -- values --------------------------------------------------------------------------------

    def value(self, node: Any, origin: Path, out: Path | None, env: Mapping[str, Any], notes: Notes) -> Any:
        """``node`` with every expression evaluated (positions of ``out`` taken from ``origin``)."""
        self.place(origin, out)
        if isinstance(node, str):
            return self.render(node, origin, env, notes)
        if isinstance(node, dict):
            result = {}
            for key, child in node.items():
                if out is not None:
                    self.place_key(origin, out, key)
                sub = None if out is None else (*out, key)
                result[key] = self.value(child, (*origin, key), sub, env, notes)
            return result
        if isinstance(node, list):
            return [
                self.value(v, (*origin, i), None if out is None else (*out, i), env, notes)
                for i, v in enumerate(node)
            ]
        return node

    def render(self, text: str, origin: Path, env: Mapping[str, Any], notes: Notes) -> Any:
        if "$" not in text:
            return text
        try:
            value = render(text, env)
        except ExprError as exc:
            self.expr_problem(origin, text, exc, notes)
            return FAILED
        if isinstance(value, list):
            self.count += size(value, MAX_EXPANDED)
        return value
