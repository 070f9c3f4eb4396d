"""Checks shared by every reader of a torchspec artefact (.ckpt, .safetensors), without torch.

* :func:`embedded_spec`: the spec a file carries is data, never a path. It must decode to a
  mapping; a string, list or number is "not a torchspec file" (``load_spec`` would otherwise read
  a string as a path and open whatever local file it names).
* :func:`check_state`: a file's tensor names and shapes against the spec's analytic state
  (:meth:`torchspec.infer.ShapeReport.state_shapes`), before any model is built; a mismatch is one
  error with a per-layer table of the tensors that differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torchspec.errors import Problem, SpecError
from torchspec.infer import infer_shapes
from torchspec.layers import Shape
from torchspec.spec import Spec, load_spec

__all__ = ["check_state", "embedded_spec", "load_embedded_spec", "not_torchspec", "state_rows"]


def not_torchspec(file: str, why: str, hints: Sequence[str] = ()) -> SpecError:
    """``FILE: error: FILE is not a torchspec file: WHY``."""
    return SpecError.single(file, f"{file} is not a torchspec file: {why}", hints=hints)


def _kind(value: Any) -> str:
    return {str: "a string", list: "a list", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def embedded_spec(raw: Any, file: str) -> dict[str, Any]:
    """The spec embedded in ``file`` (a JSON text or a mapping) as a dict; never a path to open."""
    data = raw
    if isinstance(raw, (str, bytes)):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise not_torchspec(file, f"its embedded spec is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise not_torchspec(
            file,
            f"its embedded spec must be a mapping (name, input, layers), but it is {_kind(data)}",
            hints=["files are written by `torchspec train` and `torchspec build -o`"],
        )
    return dict(data)


def load_embedded_spec(raw: Any, file: str) -> Spec:
    """The validated Spec embedded in ``file``; its problems are reported against ``file``."""
    data = embedded_spec(raw, file)
    try:
        spec = load_spec(data, expand=False)  # stored expanded: a literal $ stays text
        infer_shapes(spec)  # its shapes must agree too (a changed in_features is not this file's model)
        return spec
    except SpecError as err:
        first = err.problems[0].message if err.problems else "invalid"
        more = f" (and {len(err.problems) - 1} more problems)" if len(err.problems) > 1 else ""
        raise not_torchspec(file, f"its embedded spec is not a valid spec: {first}{more}") from None


def _show(shape: Shape | None) -> str:
    return "-" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def state_rows(expected: Mapping[str, Shape], found: Mapping[str, Shape]) -> list[tuple[str, str, str, str]]:
    """(layer, tensor, expected shape, found shape) for every tensor that differs or is missing."""
    rows = []
    for key in [*expected, *(k for k in found if k not in expected)]:
        want, got = expected.get(key), found.get(key)
        if want is not None and got is not None and tuple(want) == tuple(got):
            continue
        layer, _, tensor = key.rpartition(".")
        rows.append((layer or "(root)", tensor, _show(want), _show(got)))
    return rows


def check_state(
    expected: Mapping[str, Shape],
    found: Mapping[str, Shape],
    file: str,
    hints: Sequence[str],
    subject: str = "the checkpoint does not match the spec",
) -> None:
    """A SpecError with a per-layer table if ``found`` (name -> shape) is not exactly ``expected``.

    ``subject`` starts the message: ``SUBJECT (3 tensors differ):`` and the table.
    """
    rows = state_rows(expected, found)
    if not rows:
        return
    head = ("layer", "tensor", "expected", "found")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    shown = rows[:200]  # a hostile file may hold a million names: the table stays readable
    lines = ["    " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *shown]]
    if len(rows) > len(shown):
        lines.append(f"    ... and {len(rows) - len(shown)} more")
    message = f"{subject} ({len(rows)} tensors differ):\n" + "\n".join(lines)
    raise SpecError([Problem(file, 0, 0, message, tuple(hints))])
