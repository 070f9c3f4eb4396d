"""One layer list being expanded: repeat copies, left-out layers and the ``from`` references to them.

Copies of a repeated layer are numbered by position; a repeated layer with a ``name`` becomes a
container of that name holding them, unless the name reads ``index``: then each copy is named by
it (``denselayer$(index + 1)``), siblings in the list.

A layer left out (``when: false``, ``repeat: 0``) is read as what it would have read: a reference
to it by name becomes a reference to its input (its ``from:``, else the sibling before it, else
``input``), and the next sibling that read it implicitly reads that input too. Where its input is
an unnamed sibling (no name to refer to) and a later sibling names it, the left-out layer becomes a
parameter-free ``Identity`` of the same name reading that sibling; where it was last in its list
and read something other than the sibling before it, an unnamed ``Identity`` reading that ends the
list, so the container still outputs what it would have. Neither adds a state_dict key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from torchspec.blocks import REPEAT_INDEX
from torchspec.document import Path
from torchspec.errors import Note
from torchspec.expand_values import FAILED
from torchspec.template import uses_variable

__all__ = ["FAILED", "Expanding", "Wiring"]

_UNNAMED: Any = object()  # the input of a left-out layer is an unnamed sibling


class Expanding(Protocol):
    """What a layer list's wiring asks of the expansion it is part of (:mod:`torchspec.expand`)."""

    count: int  # nodes placed so far
    builtin: Collection[str]  # the layer types (the registry, a Mapping of name -> class)

    def layer(
        self, item: dict[str, Any], here: Path, out: Path, env: Mapping[str, Any], notes: tuple[Note, ...]
    ) -> Any: ...

    def value(
        self, node: Any, origin: Path, out: Path | None, env: Mapping[str, Any], notes: tuple[Note, ...]
    ) -> Any: ...

    def place(self, origin: Path, out: Path | None) -> None: ...

    def place_key(self, origin: Path, out: Path, key: str) -> None: ...

    def problem(
        self, origin: Path, message: str, hints: list[str], notes: tuple[Note, ...], key: bool = False
    ) -> None: ...

    def check_growth(self, here: Path, before: int, count: int) -> None: ...


_NOTHING: Any = object()  # a left-out layer that reads nothing (a Parameter): no stand-in
_FAILED_KEYS = ("name", "from", "repeat", "when")


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class Wiring:
    def __init__(
        self, ex: Expanding, items: list[Any], origin: Path, out: Path, notes: tuple[Note, ...]
    ) -> None:
        self.ex, self.origin, self.out, self.notes = ex, origin, out, notes
        self.result: list[Any] = []
        self.removed: dict[str, Any] = {}  # name of a left-out layer -> what reading it reads
        self.pending: Any = None  # what the next implicit reader reads, when not the last layer
        self.pending_at: Path = origin
        # names that siblings refer to (literally); only those need an Identity stand-in
        self.referenced = {r for item in items if isinstance(item, dict) for r in _refs(item.get("from"))}

    def next_path(self) -> Path:
        return (*self.out, len(self.result))

    def current_input(self) -> Any:
        """What a layer added now without ``from`` would read."""
        if self.pending is not None:
            return self.pending
        if not self.result:
            return "input"
        prev = self.result[-1]
        name = prev.get("name") if isinstance(prev, dict) else None
        return name if isinstance(name, str) else _UNNAMED

    def reroute(self, value: Any, at: Path) -> Any:
        """``from`` with references to left-out layers replaced by what those read."""
        if isinstance(value, str):
            return self._stand_in(value, at)
        if not isinstance(value, list):
            return value
        out = []
        for ref in value:
            new = self._stand_in(ref, at) if isinstance(ref, str) else ref
            if isinstance(new, list):
                message = (
                    f"'{ref}' is left out and read several inputs; what reading it reads is not one input"
                )
                hint = "give the left-out layer one input, or leave this layer out under the same condition"
                self.ex.problem(at, message, [hint], self.notes)
                new = ref
            out.append(new)
        return out

    def _stand_in(self, ref: str, at: Path) -> Any:
        new = self.removed.get(ref, ref)
        if new is _NOTHING:
            message = f"'{ref}' is left out, and it reads nothing (a learned tensor): nothing stands in"
            self.ex.problem(at, message, ["leave this layer out under the same condition"], self.notes)
            return ref
        return new

    def _reads_nothing(self, item: dict[str, Any]) -> bool:
        """A learned tensor (``Parameter``): its type's arity is (0, 0)."""
        kind, types = item.get("type"), self.ex.builtin  # the layer registry
        cls = types.get(kind) if isinstance(types, Mapping) and isinstance(kind, str) else None
        return getattr(cls, "arity", (1, 1))[1] == 0

    def source(self, item: dict[str, Any], here: Path, env: Mapping[str, Any]) -> Any:
        """The item's ``from`` evaluated and rerouted (None: it reads implicitly)."""
        if "from" not in item:
            return None
        value = self.ex.value(item["from"], (*here, "from"), None, env, self.notes)
        return self.reroute(value, (*here, "from"))

    def leave_out(self, item: dict[str, Any], here: Path, env: Mapping[str, Any]) -> None:
        fr = self.source(item, here, env)
        name = item.get("name")
        if isinstance(name, str) and "repeat" in item and uses_variable(name, REPEAT_INDEX):
            name = None  # it would have named copies, and none are made: nothing to stand in for
        name = self.ex.value(name, (*here, "name"), None, env, self.notes) if isinstance(name, str) else None
        if self._reads_nothing(item):  # the next layer reads the one before, as if it were not there
            if isinstance(name, str):
                self.removed[name] = _NOTHING
            return
        target = self.current_input()
        if fr is not None and fr != target:  # it read something other than the sibling before it
            self.pending, self.pending_at = fr, here
            target = fr
        if not isinstance(name, str):
            return
        if target is _UNNAMED and name in self.referenced:
            self.ex.place(here, self.next_path())
            self.result.append({"name": name, "type": "Identity"})  # reads that sibling, like the layer would
        elif target is not _UNNAMED:
            self.removed[name] = target

    def add(self, raw: Any, here: Path, value: Any) -> None:
        """A bare layer name (or something else for validation to judge)."""
        self.ex.place(here, self.next_path())
        if self.pending is not None and isinstance(value, str):
            value = {"type": value, "from": self._take_pending(here)}
        self.pending = None
        self.result.append(value)

    def _take_pending(self, here: Path) -> Any:
        fr, self.pending = self.pending, None
        if isinstance(fr, list):
            message = "the layer before this one is left out and read several inputs; this layer reads one"
            self.ex.problem(here, message, ["give this layer a `from:`"], self.notes)
        return fr

    def add_copies(self, item: dict[str, Any], here: Path, count: int, env: Mapping[str, Any]) -> None:
        fr = self.source(item, here, env)
        if fr is None and self.pending is not None:
            fr = self._take_pending(here)
        self.pending = None
        body = {k: v for k, v in item.items() if k not in _FAILED_KEYS}
        if "repeat" not in item:  # one layer: keeps its name
            node = self.ex.layer(item, here, self.next_path(), env, self.notes)
            self._append(node, fr, here, self.next_path(), self.result)
            return
        if isinstance(item.get("name"), str) and uses_variable(item["name"], REPEAT_INDEX):
            # a NAME that reads `index` names each copy (denselayer$(index + 1)): siblings, no container
            named = {k: v for k, v in item.items() if k not in _FAILED_KEYS or k == "name"}
            self._copies(named, here, count, env, self.out, self.result, fr)
            return
        if "name" in item:  # NAME + repeat: a container NAME holding copies 0 .. count-1
            out = self.next_path()
            self.ex.place(here, out)
            self.ex.place_key(here, out, "name")
            name = self.ex.value(item["name"], (*here, "name"), (*out, "name"), env, self.notes)
            container: dict[str, Any] = {"name": name, "type": "Sequential", "layers": []}
            self._copies(body, here, count, env, (*out, "layers"), container["layers"])
            self._append(container, fr, here, out, self.result)
            return
        self._copies(body, here, count, env, self.out, self.result, fr)

    def _copies(
        self, body: dict[str, Any], here: Path, count: int, env: Mapping[str, Any], out: Path,
        into: list[Any], fr: Any = None,
    ) -> None:  # fmt: skip
        """``count`` copies in a row: the first reads ``fr`` (or implicitly), each next the one before."""
        before = self.ex.count
        for k in range(count):
            path = (*out, len(into))
            node = self.ex.layer(body, here, path, {**env, REPEAT_INDEX: k}, self.notes)
            self._append(node, fr if k == 0 else None, here, path, into)
            if k == 0:
                self.ex.check_growth(here, before, count)

    def _append(self, node: Any, fr: Any, here: Path, out: Path, into: list[Any]) -> None:
        if node is FAILED:
            return
        if fr is not None and isinstance(node, dict):
            self.ex.place((*here, "from"), (*out, "from"))
            self.ex.place_key(here, out, "from")
            keys = list(node)
            at = keys.index("type") + 1 if "type" in keys else len(keys)
            items = list(node.items())
            node = dict([*items[:at], ("from", fr), *items[at:]])
        into.append(node)

    def finish(self) -> list[Any]:
        if self.pending is not None:  # the last layer was left out and read something else
            fr = self._take_pending(self.pending_at)
            self.ex.place(self.pending_at, self.next_path())
            self.result.append({"type": "Identity", "from": fr})
        return self.result
