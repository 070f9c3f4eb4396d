"""``torchspec export --to python``: the model as one standalone, readable ``.py`` file.

The file imports only torch. It defines a class named after the spec (``Resnet``), one per block
(named after the block, shared by its uses: what differs between them is a constructor parameter),
and small modules for torchspec's own stateful layers; parameterless merges are torch expressions
in the forward, which is written out line by line, each line commented with its output shape
(``N`` the batch). The state_dict keys are the built model's, so its weights load with strict=True.

Before anything is written the source is run: its class is built, the model's weights loaded into
it strictly, both run on one random batch and compared, and the module traced with torch.fx. A
file that would not reproduce the model is never written. From a MODEL file the trained weights
go beside it as ``FILE.safetensors`` (plain safetensors, loadable with ``load_state_dict``).
"""

from __future__ import annotations

import keyword
import os
import textwrap
import warnings
from pathlib import Path
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.export import Exportable
from torchspec.export.python_code import Draft, Drafter
from torchspec.export.python_helpers import HELPERS
from torchspec.export.python_text import Seq, Slot, layout, literal, render_statement, walk_slots
from torchspec.fileio import atomic_path, write_text

__all__ = ["python_source", "write_python"]

_LETTERS = ("L", "T", "S", "K", "M")
# a dimension's symbol by rank and position from the end: (N, C, D, H, W), (N, C, L), (N, F)
_SPATIAL = {"5:4": "C", "5:3": "D", "5:2": "H", "5:1": "W", "4:3": "C", "4:2": "H", "4:1": "W"}
_SPATIAL.update({"3:2": "C", "3:1": "L", "2:1": "F"})


def write_python(item: Exportable, out: Path) -> list[Path]:
    """Write ``out`` (.py) and, for a MODEL file, ``out`` with suffix .safetensors; returns both."""
    weights = out.with_suffix(".safetensors") if item.state is not None else None
    for path in (out, weights):
        if path is not None and path.is_dir():
            raise SpecError.single(str(path), f"cannot write {path}: it is a directory")
    if weights is not None and os.path.exists(weights) and os.path.samefile(weights, item.source):
        raise SpecError.single(
            str(out),
            f"cannot write {out}: its weights would go to {weights}, the MODEL file being exported",
            hints=["choose another name for the .py file"],
        )
    text, name = python_source(item, weights.name if weights is not None else None)
    check_source(text, name, item)
    written = []
    if weights is not None and item.state is not None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in item.state.items()}
        with atomic_path(weights) as tmp:
            save_file(state, tmp)
        written.append(weights)
    write_text(out, text)
    return [out, *written]


def python_source(item: Exportable, weights: str | None = None) -> tuple[str, str]:
    """(the file's text, the name of its model class); ``weights``: the .safetensors beside it."""
    report = item.report
    assert report.scope is not None
    drafter = Drafter(report, item.model, item.source)
    top: Draft = drafter.container(report.scope, top=True)[0].draft
    if keyword.iskeyword(top.base) or top.base in drafter.helpers:  # a spec named `none`, `reshape`
        top.base += "Model"
    taken = {"nn", "torch", top.base, *drafter.helpers}  # the model's class keeps the spec's name
    classes = [_resolve(group, top, taken) for group in _groups(drafter.drafts)]
    parts = [HELPERS[name].strip("\n") for name in drafter.helpers] + classes
    uses_torch = any("torch." in part for part in parts)
    parts.insert(0, "import torch\nfrom torch import nn" if uses_torch else "from torch import nn")
    text = _docstring(item, top.class_name, weights) + "\n\n" + "\n\n\n".join(parts) + "\n"
    return text, top.class_name


def _groups(drafts: list[Draft]) -> list[list[Draft]]:
    """Drafts of one structure together; a class's children come before it."""
    groups: dict[str, list[Draft]] = {}
    for draft in drafts:  # post-order: children first
        groups.setdefault(draft.key, []).append(draft)
    return sorted(groups.values(), key=lambda group: group[0].height)


def _same(values: list[Any]) -> str:
    return repr([(type(v).__name__, repr(v)) for v in values])


def _resolve(group: list[Draft], top: Draft, taken: set[str]) -> str:
    """Name the class and its parameters, set every use's arguments, and write the class."""
    first = group[0]
    name = first.base if top in group else _class_name(first, taken)
    taken.add(name)
    columns = list(zip(*(walk_slots(d.exprs(), []) for d in group)))
    params: dict[str, str] = {}  # values across the uses -> parameter name
    order: list[tuple[str, list[Any]]] = []
    names = {"self", "nn", "torch"}
    for column in columns:
        values = [slot.value for slot in column]
        key = _same(values)
        if len(set(_same([v]) for v in values)) == 1 or column[0].dim:
            continue
        if key not in params:
            found = [p for p in first.block or {} if _same([(d.block or {}).get(p) for d in group]) == key]
            params[key] = _fresh(found[0] if found else column[0].hint, names)
            order.append((params[key], values))
        for slot in column:
            slot.name = params[key]
    symbols: dict[str, str] = {}
    for column in columns:
        values = [slot.value for slot in column]
        key = _same(values)
        if not column[0].dim or len(set(_same([v]) for v in values)) == 1:
            continue
        at = key + column[0].hint  # H and W apart even where they are equal
        if key not in params and at not in symbols:
            letter = _SPATIAL.get(column[0].hint) or next((s for s in _LETTERS if s not in names), "d")
            symbols[at] = _fresh(letter, names)
        for slot in column:
            slot.name = params.get(key) or symbols[at]
    for j, draft in enumerate(group):
        draft.class_name = name
        draft.use.args = [Slot(values[j], pname) for pname, values in order]
    return _class_text(first, name, order, list(symbols.values()), group)


def _fresh(hint: str, names: set[str]) -> str:
    base = hint if hint.isidentifier() and not keyword.iskeyword(hint) else f"p_{hint}"
    text, k = base, 2
    while text in names:
        text, k = f"{base}{k}", k + 1
    names.add(text)
    return text


def _class_name(draft: Draft, taken: set[str]) -> str:
    base = draft.base
    if base not in taken:
        return base
    return next(f"{base}{k}" for k in range(2, 10**6) if f"{base}{k}" not in taken)


def _resolve_slot(slot: Slot) -> str:
    if slot.name is not None:
        return slot.name
    return str(slot.value) if slot.dim else literal(slot.value, "")


def _annotation(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and next(iter(kinds)) in (int, float, bool, str):
        return f": {next(iter(kinds)).__name__}"
    if kinds == {int, float}:
        return ": float"
    if kinds == {tuple} and all(isinstance(i, int) for v in values for i in v):
        return ": tuple[int, ...]"
    return ""


def _class_text(draft: Draft, name: str, order: list[tuple[str, list[Any]]], symbols: list[str],
                group: list[Draft]) -> str:  # fmt: skip
    base = "nn.Sequential" if draft.kind == "seq" else "nn.Module"
    doc = _class_doc(draft, group, symbols)
    lines = [f"class {name}({base}):", *doc, *([""] if doc else [])]
    args = ["self", *(f"{p}{_annotation(values)}" for p, values in order)]
    head = f"    def __init__({', '.join(args)}) -> None:"
    if len(head) <= 88:
        lines.append(head)
    else:
        lines += ["    def __init__(", *(f"        {a}," for a in args), "    ) -> None:"]
    if draft.kind == "seq":
        lines += layout(Seq("super().__init__", draft.items), 8, "", "", _resolve_slot)
        return "\n".join(lines)
    lines.append("        super().__init__()")
    for head_, expr, comment in draft.init:
        lines += render_statement(8, head_, expr, comment, _resolve_slot)
    returns = f" -> {draft.returns}" if draft.returns else ""
    lines += ["", f"    def forward(self, x: torch.Tensor){returns}:"]
    for head_, expr, comment in draft.forward:
        lines += render_statement(8, head_, expr, comment, _resolve_slot)
    return "\n".join(lines)


def _class_doc(draft: Draft, group: list[Draft], symbols: list[str]) -> list[str]:
    uses = [d.scope.path for d in group]
    if not draft.scope.path:
        return []  # the top level: the file's docstring says what it is
    what = f"Block ``{draft.block_name}``" if draft.block_name else f"Container ``{draft.scope.path}``"
    shown = ", ".join(uses[:2]) + (f" and {len(uses) - 2} more" if len(uses) > 2 else "")
    text = f"{what}: {shown}." if len(uses) > 1 or draft.block_name else f"{what}."
    if symbols:
        text += f" Shapes: {', '.join(symbols)} vary by use."
    if len(text) <= 78:  # with the indent and quotes: 88 columns
        return [f'    """{text}"""']
    wrapped = textwrap.wrap(text, 76)  # two lines at least: ruff joins one line and its quotes
    return ['    """' + wrapped[0], *(f"    {line}" for line in wrapped[1:]), '    """']


def _docstring(item: Exportable, name: str, weights: str | None) -> str:
    spec = item.report.spec
    lines = [*textwrap.wrap(f"{spec.name}: exported by torchspec from {Path(item.source).name}.", 80), ""]
    if spec.description:
        lines += [*textwrap.wrap(spec.description, 80), ""]
    lines += textwrap.wrap(
        f"{name}() takes input of shape {_shape(item.report)}; the comments give each layer's "
        "output shape, N being the batch size. Only torch is imported.",
        80,
    )
    if weights is not None:
        lines += [
            "",
            f"The trained weights are in {weights} beside this file:",
            "",
            "    import safetensors.torch",
            "",
            f"    model = {name}()",
            f'    model.load_state_dict(safetensors.torch.load_file("{weights}"))',
            "    model.eval()",
        ]
    return '"""' + "\n".join(lines) + '\n"""'


def _shape(report: Any) -> str:
    dims = ["N", *map(str, report.spec.input_shape)]
    kind = " (int64 token ids)" if report.input_dtype == "int64" else ""
    return f"({', '.join(dims)}){kind}"


def check_source(text: str, name: str, item: Exportable) -> None:
    """Run the generated file: same state_dict keys and shapes, strict load, same outputs, fx."""
    from torchspec.builder import random_input

    def fail(why: str) -> SpecError:
        return SpecError.single(
            item.source,
            f"cannot export {item.source} as Python: the generated module {why}; this is a "
            "torchspec bug, please report it with your spec",
        )

    namespace: dict[str, Any] = {"__name__": "torchspec_exported"}
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(text, "<exported>", "exec"), namespace)  # our own text, never user code
        model = namespace[name]().eval()
    want = item.model.state_dict()
    got = model.state_dict()
    if [(k, tuple(v.shape)) for k, v in got.items()] != [(k, tuple(v.shape)) for k, v in want.items()]:
        raise fail("has other state_dict keys or shapes than the model")
    model.load_state_dict(want, strict=True)
    x = random_input(item.report, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = item.model(x), model(x)
    if expected.shape != actual.shape or not torch.allclose(expected, actual, rtol=1e-4, atol=1e-5):
        raise fail("computes other outputs than the model")
    if not _traces(model) and _traces(item.model):  # torch.fx fails on some names (`lambda`) in both
        raise fail("cannot be traced by torch.fx, though the model can")


def _traces(model: torch.nn.Module) -> bool:
    try:
        torch.fx.symbolic_trace(model)
    except Exception:  # any failure: untraceable
        return False
    return True
