"""Items -> nested ``layers:``: one container per module path, wired with ``from:`` where needed.

A container of a spec reads one tensor (its ``input``) and gives its last layer's output, and its
layers read only each other and that input. So every module path holding items must be such a
region of the traced graph: one value in, one value out. Glue that reads only values from outside
a region (DenseNet's ``torch.cat(features, 1)`` at the start of each dense layer) moves out to the
enclosing container, which changes no state_dict key. What is still not such a region is an error.

Names are the attribute names, so the state_dict keys are the model's: ``features.0`` (numbered
children of a Sequential) are unnamed layers at that position, glue is unnamed unless a later layer
reads it by name.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from typing import Any

from torchspec.importing.errors import ImportFailure, where
from torchspec.importing.items import INPUT, Graph, Item, Ref

__all__ = ["assemble"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(eq=False)
class _Box:
    path: str
    input: Ref | None = None
    output: Ref | None = None
    entries: list[Any] = field(default_factory=list)  # Items and _Boxes, in order


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def _last(path: str) -> str:
    return path.rpartition(".")[2]


def _inside(owner: str, path: str) -> bool:
    return not path or owner == path or owner.startswith(path + ".")


def _describe_path(path: str) -> str:
    return path or "the model"


def _regions(graph: Graph) -> dict[str, _Box]:
    items = graph.items
    paths = {""}
    for item in items:
        owner = item.owner
        while owner:
            paths.add(owner)
            owner = _parent(owner)
    boxes = {p: _Box(p) for p in paths}
    for path in sorted(paths - {""}, key=lambda p: -p.count(".")):
        box = boxes[path]
        while True:
            inside = [i for i in items if _inside(i.owner, path)]
            members = set(map(id, inside))
            outside: list[Ref] = []
            for item in inside:
                for r in item.inputs:
                    if _outside(r, members) and r not in outside:
                        outside.append(r)
            if len(outside) <= 1:
                break
            movable = [i for i in inside if i.glue and all(_outside(r, members) for r in i.inputs)]
            if not movable:
                names = ", ".join(_show(r) for r in outside)
                raise ImportFailure(
                    f"{path} reads {len(outside)} values from outside it ({names}); a container of a "
                    "spec reads one (its input)",
                    hints=["a module whose forward takes several tensors cannot be a spec container"],
                )
            for item in movable:
                item.owner = _parent(path)
        if not outside:
            raise ImportFailure(f"{path} reads nothing from outside it; a spec container reads its input")
        box.input = outside[0]
        used: list[Ref] = []
        for item in items:
            if not _inside(item.owner, path):
                used += [r for r in item.inputs if not _outside(r, members) and r not in used]
        if not _outside(graph.output, members) and graph.output not in used:
            used.append(graph.output)
        if len(used) != 1:
            what = "nothing" if not used else ", ".join(_show(r) for r in used)
            raise ImportFailure(
                f"{path}: a spec container gives one value, but the rest of the model reads {what} from it"
            )
        box.output = used[0]
    boxes[""].input = (INPUT, ())
    boxes[""].output = graph.output
    return boxes


def _outside(ref: Ref, members: set[int]) -> bool:
    return ref[0] is INPUT or id(ref[0]) not in members


def _show(ref: Ref) -> str:
    target, index = ref
    if target is INPUT:
        return "the model's input"
    name = target.node.name
    return name + "".join(f"[{i}]" for i in index)


def _order(box: _Box, children: list[Any], boxes: dict[str, _Box], items: list[Item]) -> list[Any]:
    """Children in an order where each reads only earlier ones (the traced order where it can)."""
    first: dict[int, int] = {}
    for child in children:
        if isinstance(child, Item):
            first[id(child)] = child.order
        else:
            first[id(child)] = min(i.order for i in items if _inside(i.owner, child.path))
    deps: dict[int, set[int]] = {id(c): set() for c in children}
    for child in children:
        reads = child.inputs if isinstance(child, Item) else [child.input]
        for r in reads:
            source = _entry_of(r, box, boxes)
            if source is not None:
                deps[id(child)].add(id(source))
    by_id = {id(c): c for c in children}
    waiting = {k: set(v) for k, v in deps.items()}
    ready = [(first[k], k) for k, v in waiting.items() if not v]
    heapq.heapify(ready)
    ordered: list[Any] = []
    while ready:
        _, k = heapq.heappop(ready)
        ordered.append(by_id[k])
        for other, need in waiting.items():
            if k in need:
                need.discard(k)
                if not need:
                    heapq.heappush(ready, (first[other], other))
    if len(ordered) != len(children):
        raise ImportFailure(f"{_describe_path(box.path)}: its modules read each other in a circle")
    return ordered


def _entry_of(ref: Ref, box: _Box, boxes: dict[str, _Box]) -> Any:
    """The entry of ``box`` that gives ``ref`` (None: the box's input)."""
    if ref == box.input:
        return None
    target, _ = ref
    if target is INPUT:
        raise ImportFailure(f"{_describe_path(box.path)} reads the model's input besides its own input")
    if target.owner == box.path:
        return target
    rest = target.owner[len(box.path) + 1 :] if box.path else target.owner
    child = boxes[(box.path + "." if box.path else "") + rest.split(".")[0]]
    if ref != child.output:
        raise ImportFailure(
            f"{where(target.node)}: {target.node.name} is read from outside {child.path}, which "
            "gives only its last value"
        )
    return child


def assemble(graph: Graph) -> list[dict[str, Any]]:
    """The model's ``layers:``."""
    boxes = _regions(graph)
    for path, box in boxes.items():
        children: list[Any] = [i for i in graph.items if i.owner == path]
        children += [b for p, b in boxes.items() if p and _parent(p) == path]
        box.entries = _order(box, children, boxes, graph.items)
    return _emit(boxes[""], boxes)


def _emit(box: _Box, boxes: dict[str, _Box]) -> list[dict[str, Any]]:
    entries = list(box.entries)
    assert box.output is not None
    last = _entry_of(box.output, box, boxes)
    if last is not entries[-1] or any(box.output[1]):  # the output is not the last layer's
        entries.append(("Identity", box.output))
    # who needs a name: entries read by something other than the entry right after them
    named: set[int] = set()
    for pos, entry in enumerate(entries):
        for r in _reads(entry):
            source = _entry_of(r, box, boxes)
            alone = len(_reads(entry)) == 1 and pos > 0 and source is entries[pos - 1] and not any(r[1])
            if source is not None and not alone:
                named.add(id(source))
    taken = {n for n in map(_own_name, entries) if n is not None}
    out: list[dict[str, Any]] = []
    names: dict[int, str] = {}
    for pos, entry in enumerate(entries):
        name = _own_name(entry)
        if name is not None and name.isdigit():
            if int(name) != pos:
                raise ImportFailure(
                    f"{_describe_path(box.path)}: its child {name} would be layer {pos} of the spec "
                    "container; numbered children must be in order"
                )
            if id(entry) in named:
                raise ImportFailure(
                    f"{_describe_path(box.path)}: its child {name} is read out of order, and a "
                    "numbered child cannot be named in from:"
                )
            name = None
        elif name is not None and not _NAME.match(name):
            raise ImportFailure(
                f"{_describe_path(box.path)}: the child name {name!r} is not a spec name",
                hints=[
                    "spec names are identifiers (letters, digits, _), so this state_dict key cannot be kept"
                ],
            )
        elif name is None and id(entry) in named:
            name = _fresh(_base(entry), taken)
        if name is not None:
            names[id(entry)] = name
        layer: dict[str, Any] = {"name": name} if name is not None else {}
        if isinstance(entry, _Box):
            layer.update({"type": "Sequential", "layers": _emit(entry, boxes)})
        elif isinstance(entry, Item):
            layer.update(entry.layer)
        else:
            layer["type"] = "Identity"
        reads = _reads(entry)
        sources = [_local(r, box, boxes, names) for r in reads]
        previous = "input" if pos == 0 else names.get(id(entries[pos - 1]), "")
        plain = len(reads) == 1 and sources[0] == previous and (pos == 0 or not any(reads[0][1]))
        if reads and not plain:
            layer["from"] = sources[0] if len(sources) == 1 else sources
        if isinstance(entry, _Box):  # `layers` last reads best
            layer["layers"] = layer.pop("layers")
        out.append(layer)
    return out


def _reads(entry: Any) -> list[Ref]:
    if isinstance(entry, Item):
        return entry.inputs
    if isinstance(entry, _Box):
        return [entry.input] if entry.input is not None else []
    return [entry[1]]


def _own_name(entry: Any) -> str | None:
    if isinstance(entry, Item):
        return entry.name
    if isinstance(entry, _Box):
        return _last(entry.path)
    return None


def _base(entry: Any) -> str:
    if isinstance(entry, Item):
        return re.sub(r"_\d+$", "", entry.node.name) or "layer"
    return "out"


def _fresh(base: str, taken: set[str]) -> str:
    base = base if _NAME.match(base) and base != "input" else "layer"
    name, k = base, 1
    while name in taken or name == "input":
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _local(ref: Ref, box: _Box, boxes: dict[str, _Box], names: dict[int, str]) -> str:
    source = _entry_of(ref, box, boxes)
    if source is None:
        return "input"
    if id(source) not in names:
        # read by the entry right after it: only its position says it, which is all from: needs
        return ""
    suffix = "".join(f".{i}" for i in ref[1]) if isinstance(source, Item) else ""
    return names[id(source)] + suffix
