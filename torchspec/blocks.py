"""User-defined layer types (``blocks:``) and the spec's variables (``vars:``, ``variants:``): reading
and checking their definitions for :mod:`torchspec.expand` (which evaluates them).

A block is ``NAME: {params: {P: TYPE | {type: TYPE, default: VALUE}}, vars: {V: VALUE}, layers: [...]}``
with TYPE one of int, float, bool, str, list, any; a parameter with a default is optional. A block's
``vars`` are values computed from its parameters for each use (``hidden: $(inp * t)``), in order.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from torchspec.diagnose import did_you_mean, quote
from torchspec.errors import Problem
from torchspec.expr import FUNCTIONS, KEYWORDS
from torchspec.source import Document, Path

__all__ = [
    "MAX_NESTING",
    "META_KEYS",
    "PARAM_TYPES",
    "REPEAT_INDEX",
    "Block",
    "Param",
    "check_name",
    "fits",
    "read_blocks",
    "show",
]

META_KEYS = ("name", "type", "from", "repeat", "when")  # keys of a use that are not parameters
PARAM_TYPES = ("int", "float", "bool", "str", "list", "any")
MAX_NESTING = 32  # blocks used inside blocks, levels
REPEAT_INDEX = "index"  # the copy number inside a repeated layer
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BLOCK_KEYS = ("params", "vars", "layers", "description")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # one of PARAM_TYPES
    default: Any = None
    required: bool = True


@dataclass
class Block:
    name: str
    params: dict[str, Param] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)  # name -> the value as written (evaluated per use)


def fits(kind: str, value: Any) -> bool:
    """Whether ``value`` is of the parameter type ``kind`` (an int is a float; a bool is no int)."""
    if kind == "any":
        return True
    if isinstance(value, bool):
        return kind == "bool"
    types: dict[str, type | tuple[type, ...]] = {
        "int": int, "float": (int, float), "bool": bool, "str": str, "list": list,
    }  # fmt: skip
    return isinstance(value, types[kind])


def show(value: Any, limit: int = 40) -> str:
    """A value as written in a spec: ``true``, ``[2, 2]``, ``relu``."""
    if isinstance(value, bool) or value is None:
        text = "null" if value is None else str(value).lower()
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 8] + "..." + text[-5:]


def check_name(name: str, what: str) -> str | None:
    """Why ``name`` cannot name a variable or parameter, or None."""
    if not _IDENT.match(name):
        shown = quote(name)[1:-1]
        return f"{what} '{shown}' is not a name: use letters, digits and _, not starting with a digit"
    if name in KEYWORDS or name in FUNCTIONS or name == REPEAT_INDEX:
        return f"{what} '{name}' is reserved (a keyword, a function or the repeat index)"
    return None


def read_blocks(doc: Document, builtin: Collection[str]) -> tuple[dict[str, Block], list[Problem]]:
    """The blocks defined under ``blocks:``, and the problems of their definitions."""
    data, problems = doc.data.get("blocks"), []
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        hint = "e.g. blocks: {basic: {params: {planes: int}, layers: [...]}}"
        return {}, [doc.problem(("blocks",), "blocks must be a mapping of block names to blocks", [hint])]
    blocks: dict[str, Block] = {}
    for name, body in data.items():
        here: Path = ("blocks", name)
        why = check_name(name, "block") if not _IDENT.match(name) else None
        if why is None and name in builtin:
            why = f"block '{name}' has the name of a built-in layer type"
        if why:
            problems.append(doc.problem(here, why, ["rename the block"], key=True))
            continue
        if not isinstance(body, dict):
            problems.append(doc.problem(here, f"block '{name}' must be a mapping with params and layers"))
            continue
        for key in body:
            if key not in _BLOCK_KEYS:
                guess = did_you_mean(key, _BLOCK_KEYS, plain=True)
                message = f"block '{name}' has no key '{key}' (a block has params, vars, layers, description)"
                problems.append(doc.problem((*here, key), message, [guess] if guess else [], key=True))
        layers = body.get("layers")
        if not isinstance(layers, list) or not layers:
            message = f"block '{name}' needs `layers:`, a non-empty list of layers"
            problems.append(doc.problem((*here, "layers") if "layers" in body else here, message))
        block = Block(name)
        problems += _read_params(doc, here, body.get("params"), block)
        problems += _read_vars(doc, here, body.get("vars"), block)
        blocks[name] = block
    return blocks, problems + _recursion(doc, blocks)


def _read_params(doc: Document, here: Path, params: Any, block: Block) -> list[Problem]:
    if params is None:
        return []
    if not isinstance(params, dict):
        hint = "e.g. params: {planes: int, stride: {type: int, default: 1}}"
        return [doc.problem((*here, "params"), "params must be a mapping of names to types", [hint])]
    problems = []
    for pname, decl in params.items():
        at: Path = (*here, "params", pname)
        why = check_name(pname, "parameter") or (
            f"parameter '{pname}' is reserved: {', '.join(META_KEYS)} are keys of every layer"
            if pname in META_KEYS
            else None
        )
        if why:
            problems.append(doc.problem(at, why, ["rename the parameter"], key=True))
            continue
        if isinstance(decl, str):
            kind, default, required = decl, None, True
        elif isinstance(decl, dict) and set(decl) <= {"type", "default"} and decl:
            kind, default, required = decl.get("type", "any"), decl.get("default"), "default" not in decl
            if "type" not in decl and "default" in decl and default is not None:
                kind = next((k for k in PARAM_TYPES if fits(k, default)), "any")
        else:
            hint = "write a type (planes: int) or {type: int, default: 1}; types: " + ", ".join(PARAM_TYPES)
            problems.append(
                doc.problem(at, f"parameter '{pname}' must be a type or {{type, default}}", [hint])
            )
            continue
        if kind not in PARAM_TYPES:
            guess = did_you_mean(str(kind), PARAM_TYPES, plain=True)
            message = f"unknown parameter type {quote(str(kind))}; types: " + ", ".join(PARAM_TYPES)
            path = (*at, "type") if isinstance(decl, dict) else at
            problems.append(doc.problem(path, message, [guess] if guess else []))
            continue
        if not required and default is not None and not fits(kind, default):
            message = f"the default of '{pname}' is {show(default)}, not a {kind}"
            problems.append(doc.problem((*at, "default"), message))
            continue
        block.params[pname] = Param(pname, kind, default, required)
    return problems


def _read_vars(doc: Document, here: Path, data: Any, block: Block) -> list[Problem]:
    """A block's own vars: names that are no parameter, values that are no mapping."""
    if data is None:
        return []
    if not isinstance(data, dict):
        hint = "e.g. vars: {hidden: $(inp * t), residual: $(stride == 1 and inp == oup)}"
        return [doc.problem((*here, "vars"), "a block's vars must be a mapping of names to values", [hint])]
    problems = []
    for name, value in data.items():
        at: Path = (*here, "vars", name)
        why = check_name(name, "variable")
        if why is None and name in block.params:
            why = f"variable '{name}' has the name of a parameter of block '{block.name}'"
        if why is None and isinstance(value, dict):
            why = f"variable '{name}' holds a mapping; vars hold numbers, bools, strings or lists"
            problems.append(doc.problem(at, why))
            continue
        if why:
            problems.append(doc.problem(at, why, ["rename the variable"], key=True))
            continue
        block.vars[name] = value
    return problems


def _uses(layers: Any, path: Path, blocks: Mapping[str, Block]) -> list[tuple[str, Path]]:
    """(block name, path of the ``type``) of each literal block use in a layer list, nested too."""
    found: list[tuple[str, Path]] = []
    for index, item in enumerate(layers if isinstance(layers, list) else ()):
        kind = item.get("type") if isinstance(item, dict) else item
        if isinstance(kind, str) and kind in blocks:
            found.append((kind, (*path, index, "type") if isinstance(item, dict) else (*path, index)))
        if isinstance(item, dict):
            found += _uses(item.get("layers"), (*path, index, "layers"), blocks)
    return found


def _recursion(doc: Document, blocks: dict[str, Block]) -> list[Problem]:
    """A block that uses itself, directly or through others: an error at the use that closes it."""
    uses = {
        name: _uses(doc.data["blocks"][name].get("layers"), ("blocks", name, "layers"), blocks)
        for name in blocks
    }
    problems: list[Problem] = []
    done: set[str] = set()  # blocks whose uses are all explored (depth-first, each block once)

    def visit(name: str, stack: list[str]) -> None:
        stack.append(name)
        for used, at in uses[name]:
            if used in stack:
                cycle = " -> ".join([*stack[stack.index(used) :], used])
                hint = "a block cannot contain itself; use repeat: for N copies in a row"
                problems.append(doc.problem(at, f"block '{used}' uses itself: {cycle}", [hint]))
            elif used not in done and len(stack) < MAX_NESTING:  # deeper: expansion reports it
                visit(used, stack)
        stack.pop()
        done.add(name)

    for name in blocks:
        if name not in done:
            visit(name, [])
    return problems


def read_variants(doc: Document, variant: str | None) -> tuple[dict[str, Any], dict[str, Any], list[Problem]]:
    """(the ``vars`` as written, what ``variant`` changes in them, the problems of both sections):
    every variant may change only declared vars; an unknown ``variant`` is an error listing them."""
    raw, variants, problems = doc.data.get("vars", {}), doc.data.get("variants", {}), []
    if not isinstance(raw, dict):
        problems.append(doc.problem(("vars",), "vars must be a mapping of names to values"))
        raw = {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        hint = "e.g. variants: {small: {width: 32}, large: {width: 128}}"
        problems.append(doc.problem(("variants",), "variants must map names to vars to change", [hint]))
        variants = {}
    for name, sets in variants.items():
        for key in sets:
            if key not in raw:
                guess = did_you_mean(key, raw, plain=True)
                message = f"variant '{name}' sets '{key}', which is not declared in vars"
                hints = [guess] if guess else ["declare it under `vars:` with its default value"]
                problems.append(doc.problem(("variants", name, key), message, hints, key=True))
    if variant is not None and variant not in variants:
        problems.append(_no_variant(variant, list(variants)))
    return raw, variants.get(variant, {}) if variant is not None else {}, problems


def _no_variant(variant: str, known: list[str]) -> Problem:
    if not known:
        return Problem(
            f"--variant {variant}", 0, 0, "the spec has no variants", ("define them under `variants:`",)
        )
    guess = did_you_mean(variant, known, plain=True)
    hints = ([guess] if guess else []) + ["variants: " + ", ".join(known)]
    return Problem(f"--variant {variant}", 0, 0, f"unknown variant {quote(variant)}", tuple(hints))
