"""The order of a model's ``state_dict``, known without torch: depth first in file order, with a
container's own learned tensors (``Parameter``) before its children, because torch lists a
module's own parameters before those of its submodules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from torchspec.layers import Layer

__all__ = ["module_order"]


class _Row(Protocol):
    @property
    def path(self) -> str: ...  # the dotted module path ("features.1.0.layer_scale")

    @property
    def layer(self) -> Layer: ...


R = TypeVar("R", bound=_Row)


def module_order(rows: Sequence[R]) -> list[R]:
    """``rows`` (leaves in file order) in the order torch's ``state_dict`` visits them."""
    if not any(row.layer.learned_tensor for row in rows):
        return list(rows)
    first: dict[str, int] = {}  # every module path -> the order it is first met in
    for row in rows:
        parts = row.path.split(".")
        for k in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:k]), len(first))

    def key(row: R) -> tuple[tuple[int, int], ...]:
        parts = row.path.split(".")
        levels = [(1, first[".".join(parts[: k + 1])]) for k in range(len(parts))]
        if row.layer.learned_tensor:  # before its siblings at its own level
            levels[-1] = (0, levels[-1][1])
        return tuple(levels)

    return sorted(rows, key=key)
