"""What flows through the shape walk (:class:`Value`) and how a failed shape rule becomes a
located error naming every incoming shape and where it came from (:func:`shape_error`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torchspec.diagnose import node_at, where
from torchspec.errors import SpecError
from torchspec.inputs import FLOAT
from torchspec.layers import Layer, Out, ShapeError, first_tensor, fmt_shape
from torchspec.source import Document, Path

__all__ = ["Value", "shape_error", "shown"]


@dataclass(frozen=True)
class Value:
    """An output flowing through the walk: its shape(s), where it came from (for messages) and
    its label in the table's From column ("block1.bn2", "lstm.1", "input")."""

    out: Out
    origin: str | tuple[str, Path]  # text, or (layer type, data path): worded only for a message
    label: str
    via: str = ""  # the ``from:`` text that picked this element out of a tuple, if any
    batched: bool = True  # False for a learned tensor and what is computed from it alone
    dtype: str = FLOAT  # float32, or int64 for token ids (see torchspec.inputs)
    range: tuple[int, int | None] | None = None  # an int64 value's declared [low, high)

    @property
    def came_from(self) -> str:
        """ "after Conv2d at layers[3]" (built on demand: most values never reach a message)."""
        origin = self.origin
        text = origin if isinstance(origin, str) else f"after {origin[0]} at {where(origin[1])}"
        return f"{self.via}: {text}" if self.via else text


def shown(value: Value) -> str:
    """``[N, 196, 768]``; a learned tensor's shape as it is, ``[1, 1, 768]``."""
    return fmt_shape(first_tensor(value.out), batch=value.batched)


def shape_error(doc: Document, layer: Layer, data_path: Path, err: ShapeError, ins: list[Value]) -> SpecError:
    """The failed rule as a located error: ``LAYER (PATH): MESSAGE`` at the layer.

    A shape error is a conflict between a layer and the shape flowing into it, so it points at the
    layer; in a block-style layer spread over several lines it points at the line of the blamed
    parameter instead, the line to edit.
    """
    message = f"{layer.type_name()} ({where(data_path)}): " + err.message
    for i, value in reversed(list(enumerate(ins))):  # {in10} before {in1}
        message = message.replace(f"{{in{i}}}", f"{shown(value)} ({value.came_from})")
    if ins:
        message = message.replace("{incoming}", f"{shown(ins[0])} ({ins[0].came_from})")
    target = data_path
    node = node_at(doc.data, data_path)
    if err.field == "from" and isinstance(node, dict) and "from" in node:
        target = (*data_path, "from")
    elif err.field and isinstance(node, dict) and err.field in node:
        field_path = (*data_path, err.field)
        # its own line to edit, or its value came from --set (then the message names the --set)
        if doc.override_of(field_path) or doc.pos(field_path).line != doc.pos(data_path).line:
            target = field_path
    problem = doc.problem(target, message, err.hints)
    if not (doc.text or doc.value_pos):  # a spec given as a mapping: no file positions
        problem = replace(problem, line=0, col=0, source_line=None)
    return SpecError([problem])
