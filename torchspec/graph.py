"""The wiring stage: which value every layer reads, checked before any shape is computed.

spec (validated layers) -> :func:`wire` -> :class:`Scope` trees of :class:`Node` -> shapes (infer).

A layer reads its previous sibling (its container's input for the first) unless ``from:`` names
what it reads instead: an earlier sibling's ``name``, ``input`` (the container's input), or an
element of a sibling's tuple output (``lstm.1.0``); a list for layers with several inputs. A
container's output is its last layer's. Checked here, each at ``FILE:LINE:COL``:

* references: unknown names (did-you-mean among the names in scope), a layer reading itself or a
  later sibling, ``input`` given an index (a container's input is one tensor);
* arity: a one-input layer given a list, a merge given fewer inputs than it needs;
* in-place hazards: an ``inplace: true`` layer overwriting a tensor another layer also reads;
* a layer whose output nothing reads and that is not the last of its container: a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torchspec.diagnose import did_you_mean, quote, where
from torchspec.errors import Problem, SpecError
from torchspec.layers import Layer, Sequential
from torchspec.source import Document, Path

__all__ = ["INPUT", "Node", "Read", "Scope", "wire"]

INPUT = "input"  # the reference to a container's input


@dataclass(frozen=True)
class Read:
    """One input of a node in its container: sibling ``pos`` (-1: the container's input) and the
    ``index`` path into a tuple output (empty: the main output). ``at`` is where it is written."""

    pos: int
    index: tuple[int, ...]
    at: Path
    text: str = ""  # the reference as written ("" for the default read of the previous sibling)


@dataclass(frozen=True)
class Node:
    """A layer in its container: module ``path`` ("block1.conv1"), child ``name``, what it reads."""

    path: str
    name: str
    data_path: Path
    layer: Layer
    reads: tuple[Read, ...]
    explicit: bool  # the layer has ``from:``
    scope: Scope | None = None  # the layers inside, for a container


@dataclass(frozen=True)
class Scope:
    """A container's layers (the spec's top level, or a nested container)."""

    path: str  # "" at the top
    data_path: Path  # of the ``layers`` list
    nodes: tuple[Node, ...]
    wired: bool  # some layer has ``from:``: it compiles to a graph, not nn.Sequential
    warnings: list[Problem] = field(default_factory=list, compare=False)


def wire(layers: list[Layer], doc: Document) -> Scope:
    """Resolve every reference in a spec's layers; a SpecError lists every wiring mistake."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    scope = _scope(layers, ("layers",), "", doc, problems, warnings)
    if problems:
        raise SpecError(problems)
    _check_inplace(scope, doc, problems)
    if problems:
        raise SpecError(problems)
    scope.warnings.extend(warnings)
    return scope


def _scope(
    layers: list[Layer],
    data_path: Path,
    prefix: str,
    doc: Document,
    problems: list[Problem],
    warnings: list[Problem],
) -> Scope:
    names = [layer.name or str(i) for i, layer in enumerate(layers)]
    positions = {layer.name: i for i, layer in enumerate(layers) if layer.name}
    nodes: list[Node] = []
    for pos, layer in enumerate(layers):
        at: Path = (*data_path, pos)
        path = f"{prefix}.{names[pos]}" if prefix else names[pos]
        reads = _reads(layer, pos, at, names, positions, doc, problems)
        inner = None
        if isinstance(layer, Sequential):
            inner = _scope(layer.layers, (*at, "layers"), path, doc, problems, warnings)
        nodes.append(Node(path, names[pos], at, layer, reads, layer.from_ is not None, inner))
    # a learned tensor is held by its container, which only a graph can do (a get_attr node)
    wired = any(n.explicit or n.layer.learned_tensor for n in nodes)
    if wired:
        warnings += _unused(nodes, doc)
        for node in nodes:
            if node.layer.name == INPUT:  # `from: input` always means the container's input
                problems.append(
                    doc.problem(
                        (*node.data_path, "name"),
                        f"{node.layer.type_name()} "
                        f"({where(node.data_path)}): the name 'input' is taken in a container with from:, "
                        "where `input` means the container's input",
                        ["rename the layer"],
                    )
                )
    return Scope(prefix, data_path, tuple(nodes), wired)


def _reads(
    layer: Layer,
    pos: int,
    at: Path,
    names: list[str],
    positions: dict[str, int],
    doc: Document,
    problems: list[Problem],
) -> tuple[Read, ...]:
    what = f"{layer.type_name()} ({where(at)})"
    low, high = layer.arity
    refs = layer.from_
    if high == 0:  # a learned tensor
        if refs is not None:
            problems.append(
                doc.problem(
                    (*at, "from"),
                    f"{what} is a learned tensor and reads nothing, but has from:",
                    ["remove from: here; layers read the tensor by its name with from:"],
                )
            )
        return ()
    if refs is None:
        if low > 1:
            problems.append(
                doc.problem(
                    at,
                    f"{what} takes {_count(low, high)} inputs but reads only the previous layer",
                    [f"list them: from: {_example(low, pos, names)}"],
                )
            )
        return (Read(pos - 1, (), at),)
    items = [refs] if isinstance(refs, str) else list(refs)
    if isinstance(refs, list) and high == 1:
        problems.append(
            doc.problem(
                (*at, "from"),
                f"{what} takes one input but from: is a list of {len(refs)}",
                [f"name one layer: from: {refs[0]}"],
            )
        )
        return ()
    if len(items) < low or (high is not None and len(items) > high):
        problems.append(
            doc.problem(
                (*at, "from"),
                f"{what} takes {_count(low, high)} inputs but from: names {len(items)}",
                [f"list them: from: {_example(low, pos, names)}"],
            )
        )
        return ()
    reads = []
    for k, text in enumerate(items):
        ref_at: Path = (*at, "from", k) if isinstance(refs, list) else (*at, "from")
        name, *rest = text.split(".")
        index = tuple(int(i) for i in rest)
        if name == INPUT:
            if index:
                problems.append(
                    doc.problem(
                        ref_at,
                        f"{what}: {quote(text)} indexes the container's input, which is one tensor",
                        [f"write from: {INPUT}"],
                    )
                )
            reads.append(Read(-1, (), ref_at, text))
            continue
        target = positions.get(name)
        if target is None:
            scope_names = [n for n in names[:pos] if not n.isdigit()] + [INPUT]
            hint = did_you_mean(name, scope_names)
            known = ", ".join(scope_names)
            problems.append(
                doc.problem(
                    ref_at,
                    f"{what} reads {quote(name)}, which is not a layer in this container",
                    [hint or f"names in scope: {known}"],
                )
            )
        elif target == pos:
            problems.append(
                doc.problem(
                    ref_at,
                    f"{what} reads itself ({quote(name)})",
                    ["a layer reads an earlier sibling or `input`"],
                )
            )
        elif target > pos:
            me = quote(layer.name) if layer.name else where(at)
            problems.append(
                doc.problem(
                    ref_at,
                    f"{what} reads {quote(name)}, which comes after it",
                    [f"layers run in file order; move {quote(name)} above {me}"],
                )
            )
        else:
            reads.append(Read(target, index, ref_at, text))
    return tuple(reads)


def _count(low: int, high: int | None) -> str:
    if high is None:
        return f"{low} or more"
    return str(low) if low == high else f"{low} to {high}"


def _example(n: int, pos: int, names: list[str]) -> str:
    """``[conv2, input]``: the nearest earlier named siblings (and ``input``) as a template."""
    earlier = [INPUT, *(name for name in names[:pos] if not name.isdigit())][-n:]
    earlier += ["..."] * (n - len(earlier))
    return "[" + ", ".join(earlier) + "]"


def _unused(nodes: list[Node], doc: Document) -> list[Problem]:
    """Warnings for layers whose output nothing reads and that are not their container's last."""
    read = {r.pos for node in nodes for r in node.reads}
    out = []
    for pos, node in enumerate(nodes[:-1]):
        if pos not in read:
            what = f"{node.layer.type_name()} {quote(node.name)} ({where(node.data_path)})"
            problem = doc.problem(
                (*node.data_path, "name") if node.layer.name else node.data_path,
                f"{what}: nothing reads its output and it is not the last layer",
                ["read it with from:, or remove it"],
            )
            out.append(replace(problem, severity="warning"))
    return out


# -- in-place hazards ------------------------------------------------------------------------------
Value = tuple[str, int]  # (the tensor's storage root, how many in-place writes it has seen)


def _check_inplace(top: Scope, doc: Document, problems: list[Problem]) -> None:
    """An ``inplace: true`` layer overwrites the tensor it reads: any other reader of that same
    version of the tensor (before it: autograd may need it; after it: it sees changed values) is
    an error. Views and Identity share their input's storage, so their readers count too."""
    readers: dict[Value, list[Node]] = {}
    writers: list[tuple[Node, Value]] = []

    def run(scope: Scope, given: Value) -> Value:
        outs: list[Value] = []
        for node in scope.nodes:
            ins = [given if r.pos < 0 else outs[r.pos] for r in node.reads]
            if node.scope is not None:
                outs.append(run(node.scope, ins[0]))
                continue
            if node.layer.learned_tensor:  # an nn.Parameter: autograd refuses in-place writes to it
                outs.append((f"@{node.path}", 0))
                continue
            if node.layer.inplace_write or not node.layer.aliases_input:  # a view only passes it on
                for value in dict.fromkeys(ins):
                    readers.setdefault(value, []).append(node)
            if node.layer.inplace_write:
                writers.append((node, ins[0]))
                outs.append((ins[0][0], ins[0][1] + 1))
            elif node.layer.aliases_input:
                outs.append(ins[0])
            else:
                outs.append((f"#{node.path}", 0))
        return outs[-1]

    run(top, ("input", 0))
    for node, value in writers:
        if value[0].startswith("@"):
            problems.append(
                doc.problem(
                    (*node.data_path, "inplace"),
                    f"{node.layer.type_name()} {quote(node.path)} ({where(node.data_path)}) has "
                    f"inplace: true and would overwrite the learned tensor {quote(value[0][1:])}, "
                    "which torch refuses for a parameter that requires grad",
                    ["set inplace: false"],
                )
            )
            continue
        for other in readers[value]:
            if other is node:
                continue
            order = "after" if other.data_path > node.data_path else "before"
            problems.append(
                doc.problem(
                    (*node.data_path, "inplace"),
                    f"{node.layer.type_name()} {quote(node.path)} ({where(node.data_path)}) has "
                    f"inplace: true and overwrites the tensor that {other.layer.type_name()} "
                    f"{quote(other.path)} ({where(other.data_path)}) also reads, {order} it",
                    ["set inplace: false (in-place writes are only safe on a tensor nothing else reads)"],
                )
            )
            break
