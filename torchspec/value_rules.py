"""The rule a value broke, in the user's words: "FIELD must be RULE, found WHAT" for each kind of
pydantic error (bounds, lengths, sizes, literals, patterns...), with hints for the likely fix; the
body of :func:`torchspec.messages.value_problem`'s message.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic_core import core_schema

from torchspec.diagnose import _NOUNS, DocumentLike, Path, _Err, did_you_mean
from torchspec.wording import as_string, is_yaml, join_words, key_value, layer_example

__all__ = ["BUILTIN_KINDS", "hints_for_found", "rule_message"]

_NO_BOUND = 2**63 - 1  # layer int fields' upper bound when torch has none (torchspec.layers.fields)
BUILTIN_KINDS = frozenset(typing.get_args(core_schema.ErrorType))
# YAML 1.1's boolean words other than true/false: text in YAML 1.2 (torchspec.scalars)
_YAML_11_BOOLS = {"yes": "true", "y": "true", "on": "true", "no": "false", "n": "false", "off": "false"}


def hints_for_found(doc: DocumentLike, e: _Err, field: str) -> list[str]:
    """Hints from the found value itself: a quoted number, a YAML 1.1 boolean word, a float for an int..."""
    found = e.found
    hints = []
    typed = e.kind in _NOUNS or e.kind in ("size", "union_type", "literal_error")
    if isinstance(found, bool) and typed and e.kind != "bool_type":
        hints.append(f"{str(found).lower()} is a boolean; quote the word for a string, or write a number")
    if isinstance(found, str) and found.lower() in _YAML_11_BOOLS and e.kind == "bool_type":
        word = key_value(doc, field, _YAML_11_BOOLS[found.lower()])
        hints.append(f"only true and false are booleans (torchspec reads YAML 1.2, not 1.1): {word}")
    if isinstance(found, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", found.strip()):
        hints.append(f"remove the quotes to write a number: {key_value(doc, field, found.strip())}")
    if isinstance(found, (int, float)) and not isinstance(found, bool) and e.kind == "string_type":
        hints.append(f"quote it to make it a string: {key_value(doc, field, as_string(doc, str(found)))}")
    if isinstance(found, str) and e.kind == "bool_type" and found.lower() in ("true", "false"):
        hints.append(f"remove the quotes to write a boolean: {key_value(doc, field, found.lower())}")
    if isinstance(found, float) and e.kind == "int_type" and found.is_integer():
        hints.append(f"write an int: {key_value(doc, field, str(int(found)))}")
    return hints


def rule_message(
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
        return f"{field} must be {join_words(ctx['wants'], 'or')}, found {found}"
    if kind in _NOUNS:
        if top == ("input",):
            if not hints:
                hints.append("input is one sample's shape without the batch dimension, e.g. [3, 32, 32]")
            what = "a list of positive ints" if field == "input" else "a positive int"
            return f"{field} must be {what}, found {found}"
        if field == "layers" and kind == "list_type":
            hints.append(
                "start each layer with `- `, e.g. `- {type: Linear, out_features: 10}`"
                if is_yaml(doc)
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
        return f"{field} must be {one_of}{join_words([repr(o) for o in options], 'or')}, found {found}"
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
    if kind not in BUILTIN_KINDS:
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
            hints.append(f"add at least one layer, e.g. {layer_example(doc).split(' or ')[1]}")
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
            f"write one int for all {rank} dimensions (e.g. {key_value(doc, field, '3')}) "
            f"or a list of {rank} ints"
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
