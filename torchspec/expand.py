"""Expansion: ``vars``, ``variants``, ``blocks``, ``repeat``, ``when`` and ``$`` expressions become a
plain spec, before validation, so every check, table and error works on the result.

The stage sits between the source (text with positions) and the spec (validation). It builds a new
:class:`~torchspec.source.Document` whose positions map each expanded path to where its value was
written (inside a block: the block's definition), and whose notes say, for everything inside a
block use, where the block was used and with which parameters. Problems found later (schema,
shapes) are located through that document, so they gain the notes with no change at their sites.

Bounds: at most :data:`MAX_EXPANDED` nodes come out (a repeat's copies are counted before they are
made), blocks nest at most :data:`~torchspec.blocks.MAX_NESTING` levels. Positions, counting and
values with expressions are :mod:`torchspec.expand_values`; a layer list's repeats, left-out
layers and ``from`` rerouting are :mod:`torchspec.wiring`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from torchspec.blocks import (
    MAX_NESTING,
    META_KEYS,
    Block,
    check_name,
    fits,
    read_blocks,
    read_variants,
    show,
)
from torchspec.catalogue import explain_unknown
from torchspec.diagnose import did_you_mean, quote, sort_problems, where
from torchspec.errors import SpecError
from torchspec.expand_values import FAILED, MAX_EXPANDED, Notes, Values
from torchspec.source import Document, Path, Pos
from torchspec.template import has_template
from torchspec.wiring import Wiring

__all__ = ["MAX_EXPANDED", "SPEC_KEYS", "expand_document", "needs_expansion"]

SPEC_KEYS = ("vars", "variants", "blocks")  # top-level keys that expansion consumes


def needs_expansion(data: Any) -> bool:
    """Whether ``data`` holds anything to expand (an expression anywhere, vars, blocks, a
    ``repeat`` or ``when``)."""
    if isinstance(data, dict) and any(key in data for key in SPEC_KEYS):
        return True
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "$" in node and has_template(node):
                return True
        elif isinstance(node, dict):
            if "repeat" in node or "when" in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def expand_document(doc: Document, *, variant: str | None = None, builtin: Collection[str] = ()) -> Document:
    """The expanded document of ``doc``; ``doc`` itself when there is nothing to expand.

    ``builtin`` names the built-in layer types (block names must differ from them; an unknown type
    gets suggestions from both). Raises SpecError with every problem found.
    """
    if doc.expanded or (variant is None and not needs_expansion(doc.data)):
        return doc
    return _Expander(doc, builtin).run(variant)


class _Expander(Values):
    def __init__(self, doc: Document, builtin: Collection[str]) -> None:
        super().__init__(doc)
        self.builtin = builtin
        self.vars: dict[str, Any] = {}
        self.blocks: dict[str, Block] = {}
        self.stack: list[str] = []  # blocks being expanded, outermost first
        self.block_uses: dict[Path, tuple[str, dict[str, Any]]] = {}  # see Document.block_uses

    # -- the whole document ------------------------------------------------------------------

    def run(self, variant: str | None) -> Document:
        doc = self.doc
        self.vars = self.read_vars(variant)
        self.blocks, problems = read_blocks(doc, self.builtin)
        self.problems += problems
        if self.problems:
            raise SpecError(sort_problems(self.problems))
        out: dict[str, Any] = {}
        self.place((), ())
        for key, value in doc.data.items():
            if key in SPEC_KEYS:
                continue
            self.place_key((), (), key)
            if key == "layers" and isinstance(value, list):
                self.place(("layers",), ("layers",))
                out[key] = self.layers(value, ("layers",), ("layers",), self.vars, ())
            else:
                out[key] = self.value(value, (key,), (key,), self.vars, ())
        if self.problems:
            unique = {(p.file, p.line, p.col, p.message): p for p in self.problems}
            raise SpecError(sort_problems(unique.values()))
        # --set vars.X arguments stay on record (the resume command, the saved metadata)
        self.overrides.update({p: arg for p, arg in doc.overrides.items() if p[:1] == ("vars",)})
        return Document(
            doc.file, doc.text, out, self.value_pos, self.key_pos, doc.fmt, self.overrides, self.notes,
            variant, expanded=True, block_uses=self.block_uses,
        )  # fmt: skip

    def read_vars(self, variant: str | None) -> dict[str, Any]:
        """The vars' values: the file's, changed by the variant, changed by ``--set vars.X``."""
        doc = self.doc
        raw, chosen, problems = read_variants(doc, variant)
        self.problems += problems
        by_cli = {path[1] for path in doc.overrides if len(path) >= 2 and path[0] == "vars"}
        env: dict[str, Any] = {}
        for name, value in raw.items():
            origin: Path = ("vars", name)
            why = check_name(name, "variable")
            if name in by_cli and doc.text and origin not in doc.key_pos:
                guess = did_you_mean(name, [k for k in raw if k not in by_cli], plain=True)
                why = f"vars.{name} is not declared in the spec's vars" + (f"; {guess}" if guess else "")
                self.problems.append(doc.problem(origin, why))
                continue
            if why:
                self.problems.append(doc.problem(origin, why, ["rename the variable"], key=True))
                continue
            if name in chosen and name not in by_cli:
                value, origin = chosen[name], ("variants", str(variant), name)
            if isinstance(value, dict):
                message = f"variable '{name}' holds a mapping; vars hold numbers, bools, strings or lists"
                self.problems.append(doc.problem(origin, message))
                continue
            env[name] = self.value(value, origin, None, env, ())
        return env

    # -- layers --------------------------------------------------------------------------------

    def layers(
        self, items: list[Any], origin: Path, out: Path, env: Mapping[str, Any], notes: Notes
    ) -> list[Any]:
        """A layer list with its block uses, repeats and conditions expanded (see :class:`Wiring`)."""
        wiring = Wiring(self, items, origin, out, notes)
        for index, item in enumerate(items):
            here: Path = (*origin, index)
            if isinstance(item, str) and "$" in item:
                item = self.render(item, here, env, notes)
            if isinstance(item, str) and item in self.blocks:
                item = {"type": item}
            if not isinstance(item, dict):
                wiring.add(
                    item, here, self.value(item, here, None, env, notes) if item is not FAILED else item
                )
                continue
            if "when" in item:
                cond = self.value(item["when"], (*here, "when"), None, env, notes)
                if cond is not FAILED and not isinstance(cond, bool):
                    message = f"when must be true or false, found {show(cond)}"
                    self.problem((*here, "when"), message, ["e.g. when: $(stride != 1)"], notes)
                if cond is False:
                    wiring.leave_out(item, here, env)
                    continue
            count = self.repeat(item, here, env, notes)
            if count == 0:
                wiring.leave_out(item, here, env)
                continue
            wiring.add_copies(item, here, count, env)
        return wiring.finish()

    def repeat(self, item: dict[str, Any], here: Path, env: Mapping[str, Any], notes: Notes) -> int:
        if "repeat" not in item:
            return 1
        count = self.value(item["repeat"], (*here, "repeat"), None, env, notes)
        if count is FAILED:
            return 1
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            message = f"repeat must be an int >= 0, found {show(count)}"
            self.problem((*here, "repeat"), message, ["e.g. repeat: 3, or repeat: $(depths[0])"], notes)
            return 1
        if count > MAX_EXPANDED:
            message = f"repeat: {count:,} would expand the spec past {MAX_EXPANDED:,} nodes"
            raise SpecError([self.doc.problem((*here, "repeat"), message, ["lower the repeat count"])])
        return count

    def check_growth(self, here: Path, before: int, count: int) -> None:
        """After the first of ``count`` copies: refuse before making the rest if they cannot fit."""
        each = self.count - before
        if count > 1 and self.count + each * (count - 1) > MAX_EXPANDED:
            total = each * count
            message = (
                f"repeat: {count:,} copies of {each:,} nodes each ({total:,}) would expand the spec "
                f"past {MAX_EXPANDED:,} nodes"
            )
            raise SpecError([self.doc.problem((*here, "repeat"), message, ["lower the repeat count"])])

    def layer(self, item: dict[str, Any], here: Path, out: Path, env: Mapping[str, Any], notes: Notes) -> Any:
        """One layer (or block use) of a layer list, ``from``/``repeat``/``when`` left to the caller."""
        kind = item.get("type")
        kind = self.value(kind, (*here, "type"), None, env, notes) if isinstance(kind, str) else kind
        if isinstance(kind, str) and kind in self.blocks:
            return self.instance(self.blocks[kind], item, here, out, env, notes)
        if isinstance(kind, str) and self.blocks and kind not in self.builtin:
            guess = did_you_mean(kind, [*self.builtin, *self.blocks])
            message = f"unknown layer type {quote(kind)} (neither a built-in layer nor a block)"
            hints = [guess] if guess else ["blocks: " + ", ".join(self.blocks)]
            from torchspec.layers import REGISTRY

            explained = explain_unknown(kind, REGISTRY)
            if explained is not None:  # LazyLinear, a loss, a container: why, and what to use
                message = f"{quote(kind)} is not a spec layer: {explained[0]}"
                hints = explained[1]
            self.problem((*here, "type"), message, hints, notes)
            return FAILED
        self.place(here, out)
        result: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("when", "repeat", "from"):
                continue
            self.place_key(here, out, key)
            if key == "type":
                self.place((*here, key), (*out, key))
                result[key] = kind
            elif key == "layers" and isinstance(value, list):
                self.place((*here, key), (*out, key))
                result[key] = self.layers(value, (*here, key), (*out, key), env, notes)
            else:
                result[key] = self.value(value, (*here, key), (*out, key), env, notes)
        return result

    def instance(
        self, block: Block, item: dict[str, Any], here: Path, out: Path, env: Mapping[str, Any], notes: Notes
    ) -> Any:
        """A block use: one Sequential container named by the use, holding the block's layers."""
        if block.name in self.stack or len(self.stack) >= MAX_NESTING:
            why = "uses itself" if block.name in self.stack else f"nests deeper than {MAX_NESTING} levels"
            chain = " -> ".join([*self.stack, block.name])
            self.problem((*here, "type"), f"block '{block.name}' {why}: {chain}", [], notes)
            return FAILED
        args: dict[str, Any] = {}
        for key, value in item.items():
            if key in META_KEYS:
                continue
            if key not in block.params:
                guess = did_you_mean(key, block.params, plain=True)
                known = "parameters: " + ", ".join(block.params) if block.params else "it has no parameters"
                message = f"block '{block.name}' ({where(here)}) has no parameter '{key}'"
                self.problem((*here, key), message, [guess] if guess else [known], notes, key=True)
                continue
            arg = self.value(value, (*here, key), None, env, notes)
            param = block.params[key]
            if arg is not FAILED and not fits(param.kind, arg):
                wants = _article(param.kind)
                message = f"parameter '{key}' of block '{block.name}' must be {wants}, found {show(arg)}"
                hint = ["'/' gives a float: use '//' for an int"] if isinstance(arg, float) else []
                self.problem((*here, key), message, hint, notes)
            args[key] = arg
        missing = [p.name for p in block.params.values() if p.required and p.name not in item]
        if missing:
            listed = ", ".join(f"'{m}'" for m in missing)
            plural = "s" * (len(missing) > 1)
            message = f"block '{block.name}' ({where(here)}) is missing required parameter{plural} {listed}"
            self.problem(here, message, ["add " + ", ".join(f"`{m}: ...`" for m in missing)], notes)
        values = {p.name: args.get(p.name, p.default) for p in block.params.values()}
        shown = ", ".join(f"{k}={show(v, 24)}" for k, v in values.items())
        use_pos = self.doc.value_pos.get(here, Pos(0, 0))
        note = self.doc.note_at(
            use_pos, f"in block '{block.name}' used here" + (f" with {shown}" if shown else "")
        )
        inner: Notes = (note, *notes)
        self.place(here, out)
        container: dict[str, Any] = {}
        if "name" in item:
            self.place_key(here, out, "name")
            container["name"] = self.value(item["name"], (*here, "name"), (*out, "name"), env, notes)
        container["type"] = "Sequential"
        self.place((*here, "type"), (*out, "type"))
        self.place_key(here, out, "type")
        origin: Path = ("blocks", block.name, "layers")
        self.place(origin, (*out, "layers"))
        self.notes[(*out, "layers")] = inner
        self.block_uses[(*out, "layers")] = (block.name, values)
        self.stack.append(block.name)
        try:
            env = {**self.vars, **values}
            for name, raw in block.vars.items():  # in order: each sees the parameters and those above
                env[name] = self.value(raw, ("blocks", block.name, "vars", name), None, env, inner)
            body = self.doc.data["blocks"][block.name]["layers"]
            container["layers"] = self.layers(body, origin, (*out, "layers"), env, inner)
        finally:
            self.stack.pop()
        return container


def _article(kind: str) -> str:
    return {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string"}.get(
        kind, f"a {kind}"
    )
