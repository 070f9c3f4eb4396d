"""Drafting the classes of ``--to python`` from the wiring and the built module.

Every container becomes a draft: an ``nn.Module`` class (named children as attributes, a forward
written out line by line) or, when its children are numbered 0..n-1 and run in a row, an
``nn.Sequential`` (a subclass for a block use and the top level, an ``nn.Sequential(...)`` in its
parent's ``__init__`` otherwise). torchspec's parameterless merges and tensor ops become torch
expressions in the forward; children with state keep their names, so the state_dict keys are the
built model's. Drafts of the same structure (a block used 16 times) share one class: what differs
between the uses becomes a constructor parameter, named after the block's parameter whose value it
is (``planes``) where one matches, and a shape dimension that differs becomes a symbol (``H``).
"""

from __future__ import annotations

import inspect
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.export.python_forward import write_forward
from torchspec.export.python_helpers import HELPERS
from torchspec.export.python_text import INLINE, Call, Raw, Seq, Slot, Use, literal, signature
from torchspec.graph import Scope
from torchspec.infer import LayerRow, ShapeReport, infer_shapes
from torchspec.layers import TupleOut
from torchspec.layers.base import InlineLayer

__all__ = ["Draft", "Drafter", "camel"]


def camel(name: str) -> str:
    """``encoder_block`` -> ``EncoderBlock``; a valid class name whatever the input."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    text = text if text[0].isalpha() else f"Model{text}"
    return f"{text}Block" if keyword.iskeyword(text) else text  # None, True, False


def _plain(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not hasattr(torch.nn.Module, name)


@dataclass
class Draft:
    scope: Scope
    base: str  # the class name it wants
    kind: str  # "module" or "seq"
    block: dict[str, Any] | None  # a block use: its parameters' values (from the expansion notes)
    init: list[tuple[str, Any, list[Any] | None]] = field(default_factory=list)  # (head, expr, comment)
    items: list[tuple[Any, list[Any] | None]] = field(default_factory=list)  # seq: (expr, comment)
    forward: list[tuple[str, Any, list[Any] | None]] = field(default_factory=list)
    returns: str = "torch.Tensor"
    children: list[Draft] = field(default_factory=list)
    height: int = 0
    class_name: str = ""
    params: list[tuple[str, Any]] = field(default_factory=list)  # (name, first use's value)
    use_args: list[Slot] = field(default_factory=list)  # this use's parameter values
    use: Any = None  # the Use expression that instantiates this draft
    block_name: str = ""
    _key: str = ""

    @property
    def key(self) -> str:
        """The structure: drafts with the same key differ in values only and share a class."""
        if not self._key:
            self._key = f"{self.kind}|{self.base}|{self.returns}|{signature(self.exprs())}"
        return self._key

    def exprs(self) -> list[Any]:
        """Every expression and comment, in a fixed order (the order slots are matched in)."""
        out: list[Any] = []
        for head, expr, comment in self.init:
            out += [head, expr, comment or []]
        for expr, comment in self.items:
            out += [expr, comment or []]
        for head, expr, comment in self.forward:
            out += [head, expr, comment or []]
        return out


class Drafter:
    """Walks the report's wiring with the built module and drafts every container."""

    def __init__(self, report: ShapeReport, model: torch.nn.Module, source: str) -> None:
        self.report = report
        self.model = model
        self.source = source
        self.rows: dict[str, LayerRow] = {row.path: row for row in report.rows}
        other = infer_shapes(report.spec, batch=report.batch + 1)  # which dims follow the batch
        self.rows2: dict[str, LayerRow] = {row.path: row for row in other.rows}
        self.state = list(report.state_shapes())
        self.helpers: list[str] = []
        self.drafts: list[Draft] = []

    # -- shapes as comments ----------------------------------------------------------------------
    def dim(self, d1: int, d2: int, pos: str) -> Slot:
        """One dimension: ``N`` (or ``k*N``) where it follows the batch; ``pos``: rank:from the end."""
        b = self.report.batch
        if d1 != d2 and d1 % b == 0 and d2 == d1 // b * (b + 1):
            k = d1 // b
            return Slot("N" if k == 1 else f"{k}*N", "", dim=True)
        return Slot(d1, pos, dim=True)

    def shape_tokens(self, out: Any, out2: Any) -> list[Any]:
        if out is None:
            return ["None"]
        if isinstance(out, TupleOut):
            parts = [self.shape_tokens(a, b) for a, b in zip(out.items, out2.items)]
        else:
            rank = len(out)
            parts = [[self.dim(a, b, f"{rank}:{rank - i}")] for i, (a, b) in enumerate(zip(out, out2))]
        tokens: list[Any] = ["("]
        for i, part in enumerate(parts):
            tokens += ([", "] if i else []) + part
        return [*tokens, ",)" if len(parts) == 1 else ")"]

    def comment(self, path: str) -> list[Any]:
        row, row2 = self.rows[path], self.rows2[path]
        return self.shape_tokens(row.out or row.output, row2.out or row2.output)

    def last_leaf(self, scope: Scope) -> str:
        node = scope.nodes[-1]
        return self.last_leaf(node.scope) if node.scope is not None else node.path

    # -- leaves --------------------------------------------------------------------------------
    def module_expr(self, layer: Any, args: dict[str, Any], hint: str, path: str) -> Call:
        home, name = layer.torch_class(args)  # causal: true picks torchspec's CausalX subclass
        if home == "torch.nn":
            func = f"nn.{name}"
        elif home == "torchspec.nn" and name in HELPERS:
            func = name
            if name not in self.helpers:
                self.helpers.append(name)
        else:
            raise SpecError.single(
                self.source,
                f"cannot export {path} ({name}) as Python: a {name} cannot stand in a plain "
                "nn.Sequential of the exported file",
                hints=["name the layers of its container, or wire it with from:"],
            )
        params = list(inspect.signature(layer.torch_factory()).parameters)  # the subclass's too
        positional = []
        keywords = {k: v for k, v in args.items() if k not in layer.spec_fields}
        for i, key in enumerate(layer.positional):  # torch's positional order, as far as it holds
            if key not in keywords or i >= len(params) or params[i] != key:
                break
            positional.append(keywords.pop(key))
        out: list[tuple[str | None, Any]] = [(None, self.value(v, hint, k, path)) for k, v in
                                             zip(layer.positional, positional)]  # fmt: skip
        out += [(k, self.value(v, hint, k, path)) for k, v in keywords.items()]
        return Call(func, out)

    def value(self, value: Any, hint: str, key: str, path: str) -> Any:
        if isinstance(value, InlineLayer):
            return self.module_expr(value.layer, value.args, f"{hint}_{key}", path)
        literal(value, path)  # no literal form: refused now, not in a broken file
        return Slot(value, f"{hint}_{key}" if hint else key)

    # -- containers ----------------------------------------------------------------------------
    def block_of(self, scope: Scope) -> tuple[str, dict[str, Any]] | None:
        use = self.report.spec.document.block_uses.get(scope.data_path)
        return None if use is None else (use[0], dict(use[1]))

    def container(self, scope: Scope, top: bool = False) -> Any:
        """The expression that builds ``scope``: a generated class's instance, or nn.Sequential."""
        block = self.block_of(scope)
        names = [node.name for node in scope.nodes]
        seq = scope.path not in self.report.graphs and names == [str(i) for i in range(len(names))]
        if top:
            base = camel(self.report.name)
        else:
            base = camel(block[0]) if block else camel(scope.path.rsplit(".", 1)[-1])
        draft = Draft(scope, base, "seq" if seq else "module", block[1] if block else None)
        draft.block_name = block[0] if block else ""
        if seq:
            for node in scope.nodes:
                draft.items.append((self.child(node, draft, hint=""), self.comment(self.last_leaf_of(node))))
            if not top and block is None:
                return Seq("nn.Sequential", draft.items), draft.children
        else:
            self.module(draft, scope, top)
        draft.height = 1 + max((c.height for c in draft.children), default=0)
        self.drafts.append(draft)
        draft.use = Use(draft)
        return draft.use, [draft]

    def last_leaf_of(self, node: Any) -> str:
        return self.last_leaf(node.scope) if node.scope is not None else node.path

    def child(self, node: Any, draft: Draft, hint: str) -> Any:
        if node.scope is not None:
            expr, drafts = self.container(node.scope)
            draft.children += drafts
            return expr
        row = self.rows[node.path]
        return self.module_expr(row.layer, row.args, hint, node.path)

    def has_state(self, path: str) -> bool:
        return any(key == path or key.startswith(path + ".") for key in self.state)

    def module(self, draft: Draft, scope: Scope, top: bool) -> None:
        attrs: dict[str, str] = {}  # child name -> how the class reads it ("self.conv1")
        taken: set[str] = set()
        for node in scope.nodes:
            row = self.rows.get(node.path)
            kind = row.layer.type_name() if row is not None else "sequential"
            if row is not None and row.layer.torch_home == "torchspec.nn" and kind in INLINE:
                continue  # an expression in the forward
            attr = node.name if _plain(node.name) else None
            if attr is None and not self.has_state(node.path):  # free to rename: no keys
                attr = f"{kind.lower()}_{node.name}"  # relu_3, sequential_5 (relu3 would read as ReLU3)
                attr = attr if _plain(attr) else f"layer{node.name}"
                while attr in taken or attr in names_of(scope):
                    attr += "_"
            hint = attr or f"layer{node.name}"
            if row is not None and row.layer.learned_tensor:
                expr: Any = Call("nn.Parameter", [(None, Raw(_tensor_init(row)))])
                reg = "register_parameter"
            else:
                expr = self.child(node, draft, hint)
                reg = "add_module"
            if attr is None:  # a numbered child with state: its key is its number
                draft.init.append(
                    ("", Call(f"self.{reg}", [(None, Raw(f'"{node.name}"')), (None, expr)]), None)
                )
                attrs[node.name] = f'getattr(self, "{node.name}")'
            else:
                taken.add(attr)
                draft.init.append((f"self.{attr} = ", expr, None))
                attrs[node.name] = f"self.{attr}"
        write_forward(self, draft, scope, attrs, top)


def names_of(scope: Scope) -> set[str]:
    return {node.name for node in scope.nodes}


def _tensor_init(row: LayerRow) -> str:
    layer = row.layer
    shape = ", ".join(str(d) for d in row.state[""])
    init = getattr(layer, "init", "zeros")
    if init == "normal":
        return f"torch.empty({shape}).normal_({layer.mean!r}, {layer.std!r})"  # type: ignore[attr-defined]
    if init == "constant":
        value = layer.value if layer.value is not None else 0.0  # type: ignore[attr-defined]
        return f"torch.full({literal(tuple(row.state['']), row.path)}, {float(value)!r})"
    return f"torch.{init}({shape})"
