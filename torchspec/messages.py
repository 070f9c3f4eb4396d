"""The wording of located problems: one message and its hints per kind of pydantic error.

:func:`torchspec.pydantic_errors.problems_from_errors` parses and merges the errors; here each becomes
"FIELD must be RULE, found WHAT" in the user's words, with hints for the likely fix in the
document's own format, YAML or JSON (a YAML 1.1 boolean word such as ``no`` is text in the YAML 1.2
torchspec reads: the hint says to write ``false``).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic_core import core_schema

from torchspec.catalogue import explain_unknown
from torchspec.diagnose import (
    _NOUNS,
    DocumentLike,
    FieldsOf,
    Path,
    _Err,
    _tag,
    describe,
    did_you_mean,
    node_at,
    quote,
    suggest,
    where,
)
from torchspec.errors import Problem

__all__ = ["bad_layer", "missing_keys", "unknown_key", "value_problem"]

_NO_BOUND = 2**63 - 1  # layer int fields' upper bound when torch has none (torchspec.layers.fields)
_BUILTIN_KINDS = frozenset(typing.get_args(core_schema.ErrorType))
# YAML 1.1's boolean words other than true/false: text in YAML 1.2 (torchspec.scalars)
_YAML_11_BOOLS = {"yes": "true", "y": "true", "on": "true", "no": "false", "n": "false", "off": "false"}
_LAYER_EXAMPLES = {
    "yaml": "`- ReLU` or `- {type: Linear, out_features: 10}`",
    "json": '`"ReLU"` or `{"type": "Linear", "out_features": 10}`',
}
_SPEC_SHAPE = "a spec has `name:`, `input:` (one sample's shape, e.g. [3, 32, 32]) and `layers:` (a list)"


def _found(value: Any) -> str:
    shown = describe(value)
    return shown if len(shown) <= 80 else f"{shown[:60]}...{shown[-12:]}"


def _owner(data: Any, path: Path) -> tuple[str | None, Path]:
    """The innermost layer on ``path`` (a mapping with a ``type``, or a bare name in a list)."""
    node, owner = data, None
    owner_path: Path = ()
    for end, step in enumerate(path, 1):
        node = node_at(node, (step,))
        if (isinstance(node, dict) and _tag(node)) or (isinstance(step, int) and isinstance(node, str)):
            owner, owner_path = _tag(node), path[:end]
    return owner, owner_path


def _subject(data: Any, path: Path) -> tuple[str, str, str | None]:
    """(label prefix like "Conv3d (layers[0]): ", field text like "kernel_size", owner type)."""
    owner, owner_path = _owner(data, path[:-1] if path else path)
    if owner is None or not path:
        return "", where(path), None
    inner = path[len(owner_path) :]
    return f"{owner} ({where(owner_path)}): ", where(inner), owner


def _token(doc: Any, path: Path) -> str | None:
    """The scalar the user typed at ``path`` (``no`` for a YAML false), when the text is known."""
    positions = getattr(doc, "value_pos", None)
    if not positions or path not in positions:
        return None
    pos = positions[path]
    line = doc.line_text(pos.line) if hasattr(doc, "line_text") else None
    if not line:
        return None
    match = re.match(r"[^\s,\]\}#]*", line[pos.col - 1 :])
    return match[0] if match else None


def _is_yaml(doc: Any) -> bool:
    return getattr(doc, "fmt", "yaml") == "yaml"


def _quoted(doc: Any, text: str) -> str:
    return f"'{text}'" if _is_yaml(doc) else f'"{text}"'


def _kv(doc: Any, key: str, value: str) -> str:
    """``key: value`` as the user would write it in this document's format (a list item: the value)."""
    if not key.isidentifier():
        return f"`{value}`"
    return f"`{key}: {value}`" if _is_yaml(doc) else f'`"{key}": {value}`'


def _layer_example(doc: Any) -> str:
    return _LAYER_EXAMPLES["yaml" if _is_yaml(doc) else "json"]


# -- one problem per kind of error ---------------------------------------------------------------


def missing_keys(doc: DocumentLike, path: Path, fields: list[str], extra: Iterable[str]) -> list[Problem]:
    """Required keys missing at ``path``, less those an unknown key in ``extra`` is a misspelling of."""
    misspelt = {suggest(name, fields) for name in extra}
    fields = [f for f in dict.fromkeys(fields) if f not in misspelt]
    if not fields:
        return []
    names = _join([f"'{f}'" for f in fields])
    plural = "s" if len(fields) > 1 else ""
    node = node_at(doc.data, path)
    owner, owner_path = _owner(doc.data, path)
    adds = ", ".join(_kv(doc, f, "...") for f in fields)
    if not path:
        message = f"the spec is missing required top-level key{plural} {names}"
        return [doc.problem(path, message, [_SPEC_SHAPE])]
    if owner is not None and owner_path == path:
        message = f"{owner} ({where(path)}) is missing required parameter{plural} {names}"
        if isinstance(node, str):
            pairs = [_kv(doc, "type", owner if _is_yaml(doc) else f'"{owner}"')]
            pairs += [_kv(doc, f, "...") for f in fields]
            example = "{" + ", ".join(p.strip("`") for p in pairs) + "}"
            example = f"`- {example}`" if _is_yaml(doc) else f"`{example}`"
            hints = [f"a bare name takes no parameters; write the layer as a mapping: {example}"]
        else:
            hints = [f"add {adds} to this layer"]
        return [doc.problem(path, message, hints)]
    message = f"{where(path)} is missing required key{plural} {names}"
    return [doc.problem(path, message, [f"add {adds}"])]


def unknown_key(doc: DocumentLike, path: Path, fields_of: FieldsOf) -> Problem:
    """A key no model knows, with the closest known name or the list of known ones."""
    name = str(path[-1])
    parent = path[:-1]
    owner, owner_path = _owner(doc.data, parent)
    if owner is not None and owner_path == parent:
        known = list(fields_of(owner) or [])
        message = f"{owner} ({where(parent)}) has no parameter {quote(name)}"
        listing = f"{owner} takes: " + ", ".join(known) if known else f"{owner} takes no parameters"
    elif not parent:
        known = list(fields_of(None) or [])
        message = f"unknown top-level key {quote(name)}"
        listing = "the top-level keys are: " + ", ".join(known)
    else:
        known = []
        message = f"unknown key {quote(name)} in {where(parent)}"
        listing = ""
    guess = did_you_mean(name, known)
    hints = [guess] if guess else [listing] if listing else []
    return doc.problem(path, message, hints, key=True)


def bad_layer(doc: DocumentLike, e: _Err, layers: Mapping[str, Any]) -> tuple[Path, str, list[str]]:
    """A list item that is no layer: an unknown type name, no ``type``, or not a layer at all.

    ``layers`` maps the known layer type names to their classes (the registry).
    """
    path, found = e.path, e.found
    tag = e.ctx.get("tag")
    if e.kind == "union_tag_invalid" and isinstance(tag, str):
        target = (*path, "type") if isinstance(found, dict) else path
        explained = explain_unknown(tag, layers)
        if explained is not None:  # LazyLinear, a loss, a container: why, and what to use
            why, hints = explained
            return target, f"{where(path)}: {quote(tag)} is not a spec layer: {why}", hints
        guess = did_you_mean(tag, layers)
        hints = (
            [guess]
            if guess
            else [
                "layer types are torch.nn class names such as Conv2d, Linear or ReLU; "
                "`torchspec schema` lists them all"
            ]
        )
        return target, f"{where(path)}: unknown layer type {quote(tag)}", hints
    if isinstance(found, dict) and "type" not in found:
        guess = next((k for k in found if isinstance(k, str) and suggest(k, ["type"])), None)
        if guess is not None:
            message = f"{where(path)}: the layer has no 'type' (found key {quote(guess)})"
            return (*path, guess), message, ["did you mean 'type'?"]
        message = f"{where(path)}: the layer has no 'type'"
        return path, message, [f"add the layer type, e.g. {_kv(doc, 'type', _quoted(doc, 'Linear'))}"]
    if isinstance(found, dict):
        message = f"{where(path)}: type must be a layer type name, found {_found(found['type'])}"
        return (*path, "type"), message, [f"e.g. {_kv(doc, 'type', _quoted(doc, 'Conv2d'))}"]
    what = _found_text(doc, path, found)
    message = f"{where(path)} must be a layer (a type name or a mapping with 'type'), found {what}"
    return path, message, [f"write e.g. {_layer_example(doc)}"]


def _found_text(doc: DocumentLike, path: Path, found: Any) -> str:
    """How the found value reads, naming a surprise (an empty value is null)."""
    if found is None and _is_yaml(doc):
        token = _token(doc, path)
        if token == "":
            return "no value (an empty value is null)"
    return _found(found)


def _hints_for_found(doc: DocumentLike, e: _Err, field: str) -> list[str]:
    found = e.found
    hints = []
    typed = e.kind in _NOUNS or e.kind in ("size", "union_type", "literal_error")
    if isinstance(found, bool) and typed and e.kind != "bool_type":
        hints.append(f"{str(found).lower()} is a boolean; quote the word for a string, or write a number")
    if isinstance(found, str) and found.lower() in _YAML_11_BOOLS and e.kind == "bool_type":
        word = _kv(doc, field, _YAML_11_BOOLS[found.lower()])
        hints.append(f"only true and false are booleans (torchspec reads YAML 1.2, not 1.1): {word}")
    if isinstance(found, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", found.strip()):
        hints.append(f"remove the quotes to write a number: {_kv(doc, field, found.strip())}")
    if isinstance(found, (int, float)) and not isinstance(found, bool) and e.kind == "string_type":
        hints.append(f"quote it to make it a string: {_kv(doc, field, _quoted(doc, str(found)))}")
    if isinstance(found, str) and e.kind == "bool_type" and found.lower() in ("true", "false"):
        hints.append(f"remove the quotes to write a boolean: {_kv(doc, field, found.lower())}")
    if isinstance(found, float) and e.kind == "int_type" and found.is_integer():
        hints.append(f"write an int: {_kv(doc, field, str(int(found)))}")
    return hints


def value_problem(doc: DocumentLike, e: _Err, layers: Mapping[str, Any]) -> tuple[Path, str, list[str]]:
    """A value that breaks a rule: (where, "FIELD must be RULE, found WHAT", hints); ``layers`` as
    for :func:`bad_layer` (a field's other bound, a layer's spatial dimensions)."""
    path, kind = e.path, e.kind
    node = node_at(doc.data, path)
    if path and isinstance(node, dict) and _tag(node) and kind not in _BUILTIN_KINDS:
        # a rule of the whole layer (e.g. Upsample needs one of size/scale_factor)
        tag = str(_tag(node))
        return path, f"{tag} ({where(path)}): {e.msg.removeprefix(tag + ' ')}", []
    label, field, owner = _subject(doc.data, path)
    found = _found_text(doc, path, e.found)
    hints = _hints_for_found(doc, e, field)
    top = path[:1] if not owner and path else ()
    message = _rule(doc, kind, field, found, e, owner, hints, top, layers.get(owner or ""))
    return path, label + message, hints


def _rule(
    doc: DocumentLike,
    kind: str,
    field: str,
    found: str,
    e: _Err,
    owner: str | None,
    hints: list[str],
    top: Path,
    cls: Any,
) -> str:
    """The message body for one value: "FIELD must be RULE, found WHAT" (plus hints); ``cls`` is
    the owner's layer class, if any."""
    ctx = e.ctx
    if kind == "union_type" and field == "input" and top == ("input",):  # neither form of input
        hints.append("input is one sample's shape without the batch dimension, e.g. [3, 32, 32]; "
                     "token ids: {shape: [64], dtype: int64, high: VOCAB}")  # fmt: skip
        return f"input must be a list of positive ints, found {found}"
    if kind == "union_type":
        return f"{field} must be {_join(ctx['wants'], 'or')}, found {found}"
    if kind in _NOUNS:
        if top == ("input",):
            if not hints:
                hints.append("input is one sample's shape without the batch dimension, e.g. [3, 32, 32]")
            what = "a list of positive ints" if field == "input" else "a positive int"
            return f"{field} must be {what}, found {found}"
        if field == "layers" and kind == "list_type":
            hints.append(
                "start each layer with `- `, e.g. `- {type: Linear, out_features: 10}`"
                if _is_yaml(doc)
                else 'write a list: `"layers": [{"type": "Linear", "out_features": 10}]`'
            )
            return f"layers must be a list of layers, found {found}"
        return f"{field} must be {_NOUNS[kind]}, found {found}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if isinstance(e.found, str):
            guess = did_you_mean(e.found, options)
            if guess:
                hints.append(guess)
        one_of = "one of " if len(options) > 2 else ""
        return f"{field} must be {one_of}{_join([repr(o) for o in options], 'or')}, found {found}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        if top == ("input",) and field != "input":
            hints.append("input is one sample's shape without the batch dimension, e.g. [3, 32, 32]")
            return f"{field} must be a positive int, found {found}"
        return f"{field} must be {_bounds(kind, ctx, cls, field)}, found {found}"
    if kind in ("too_short", "too_long"):
        return _length_rule(doc, kind, field, e, owner, hints)
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind == "string_too_long":
        return f"{field} is {len(str(e.found))} characters long; at most {ctx.get('max_length')} are allowed"
    if kind == "string_pattern_mismatch":
        if field == "name" or field.endswith(".name"):
            hints.append(
                "a layer name is a Python identifier: letters, digits and _, not starting with a "
                "digit (it becomes the module's attribute name and the state_dict key prefix)"
            )
            return f"layer name {found.removeprefix('string ')} is not a valid name"
        return f"{field} must match {ctx.get('pattern')}, found {found}"
    if kind == "finite_number":
        return f"{field} must be a finite number, found {found}"
    if kind == "size":
        return _size_rule(doc, field, e, owner, found, hints, cls)
    if kind not in _BUILTIN_KINDS:
        # a layer's own rule: its message already names the field and the fix
        msg = e.msg
        if re.search(rf"\b{re.escape(field.split('[')[0])}\b", msg):
            return msg
        return f"{field}: {msg}"
    msg = e.msg[:1].lower() + e.msg[1:]
    msg = msg.removeprefix("input should be ").removeprefix("value should be ")
    return f"{field} must be {msg}, found {found}" if msg != e.msg else f"{field}: {msg} (found {found})"


def _bounds(kind: str, ctx: dict[str, Any], cls: Any, field: str) -> str:
    key = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}
    op = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    name = key[kind]
    bound = ctx.get(name)
    other = _other_bound(cls, field, name)
    if other is not None:
        lo, hi = (bound, other) if name in ("ge", "gt") else (other, bound)
        return f"between {_num(lo)} and {_num(hi)}"
    return f"{op[name]} {_num(bound)}"


def _other_bound(cls: Any, field: str, name: str) -> Any:
    """The opposite bound of a layer field (p's 1 when it broke >= 0), when both are inclusive."""
    if cls is None or name not in ("ge", "le"):
        return None
    info = cls.model_fields.get(field)
    if info is None:
        return None
    want = "le" if name == "ge" else "ge"
    for meta in info.metadata:
        value = getattr(meta, want, None)
        if value is not None and abs(value) < _NO_BOUND:
            return value
    return None


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _length_rule(
    doc: DocumentLike, kind: str, field: str, e: _Err, owner: str | None, hints: list[str]
) -> str:
    ctx = e.ctx
    n = ctx.get("actual_length", len(e.found) if isinstance(e.found, (list, str, dict)) else "?")
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        if n == 0 and field.endswith("layers"):
            hints.append(f"add at least one layer, e.g. {_layer_example(doc).split(' or ')[1]}")
            what = f"a {owner}" if owner else "a model"
            return f"{field} is empty; {what} needs at least one layer"
        if n == 0 and field == "input":
            hints.append("input is one sample's shape without the batch dimension, e.g. [3, 32, 32]")
            return "input is empty; it needs at least one dimension"
        if n == 0:
            return f"{field} is empty; it needs at least {least} item{'s' if least != 1 else ''}"
        return f"{field} has {n} item{'s' if n != 1 else ''}; it needs at least {least}"
    most = ctx.get("max_length")
    return f"{field} has {n} items; at most {most} are allowed"


def _size_rule(
    doc: DocumentLike, field: str, e: _Err, owner: str | None, found: str, hints: list[str], cls: Any
) -> str:
    """Size fields (kernel_size, stride...): an int, or one int per spatial dimension."""
    ctx = e.ctx
    why, minimum, dims = str(ctx.get("why", "")), ctx.get("minimum", 1), str(ctx.get("dims", ""))
    rank_match = re.search(r"a list of (\d+) ints", dims)
    rank = int(rank_match[1]) if rank_match else 1
    either = f"an int >= {minimum}" + (f" or a list of {rank} such ints" if rank > 1 else "")
    if why.startswith("wrong length") and isinstance(e.found, list):
        spatial = _spatial_layout(cls)
        has = f"{owner} has" if owner else "there are"
        dims_text = f"{rank} spatial dimension{'s' if rank > 1 else ''}{spatial}"
        hints.append(
            f"write one int for all {rank} dimensions (e.g. {_kv(doc, field, '3')}) or a list of {rank} ints"
        )
        return f"{field} {e.found} has {len(e.found)} entries but {has} {dims_text}"
    if why == "out of range":
        if isinstance(e.found, list):
            return f"every entry of {field} must be >= {minimum}, found {found}"
        return f"{field} must be >= {minimum}, found {found}"
    return f"{field} must be {either}, found {found}"


def _spatial_layout(cls: Any) -> str:
    """`` (D, H, W)`` for Conv3d: its sample layout without the channel dimension."""
    layout = getattr(cls, "sample_layout", "") if cls else ""
    match = re.fullmatch(r"\(C, ([^()]*)\)", layout)
    return f" ({match[1]})" if match else ""


def _join(items: Sequence[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
