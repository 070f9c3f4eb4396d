"""The text side of ``--to python``: expressions, their layout as ``ruff format`` writes it, and the
small modules an exported file defines for torchspec's own layers (the file imports only torch).

Expressions are trees (:class:`Call`, :class:`Seq`, :class:`Raw`, :class:`Slot`, :class:`Use`) so
one layout rule serves every statement: on one line when it fits (88 columns), otherwise exploded
one argument per line with a trailing comma (a "magic" comma, which the formatter keeps). A
:class:`Slot` is a value that may differ between the uses of one generated class; the class
resolution (:mod:`torchspec.export.python_code`) names it (a constructor parameter) or keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torchspec.errors import SpecError

__all__ = ["HELPERS", "INLINE", "Call", "Raw", "Seq", "Slot", "Use", "literal", "render_statement"]

INLINE = {"Add", "Mul", "Concat", "Mean", "Permute", "Reshape", "Chunk", "Split", "Select", "ExpandBatch"}
WIDTH = 88  # ruff format's default line length (the file is checked where no config applies)


@dataclass
class Raw:
    text: str


@dataclass
class Slot:
    """A value of one use: a constructor argument (``hint``: a parameter name) or a dimension of a
    shape comment (``dim``)."""

    value: Any
    hint: str
    dim: bool = False
    name: str | None = None  # set by the class resolution: the parameter (or symbol) it became


@dataclass
class Use:
    """An instance of a generated class: ``Bottleneck(64, 2)``; ``draft`` is the container's draft."""

    draft: Any
    args: list[Any] = field(default_factory=list)  # the class's parameters' values (Expr), resolved


@dataclass
class Call:
    func: str
    args: list[tuple[str | None, Any]]  # (keyword or None, Expr)


@dataclass
class Seq:
    """``nn.Sequential(a, b, ...)``, always one element per line, each with its shape comment."""

    func: str
    items: list[tuple[Any, list[Any] | None]]  # (Expr, comment tokens)


Resolver = Callable[[Slot], str]


def literal(value: Any, where: str) -> str:
    """A constructor argument as Python source (strings in double quotes, as ruff writes them)."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f'float("{value}")'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v, where) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    raise SpecError.single(
        where, f"cannot export {where} as Python: the value {value!r:.60} has no literal form"
    )


def tokens_text(tokens: list[Any], resolve: Resolver) -> str:
    return "".join(t if isinstance(t, str) else resolve(t) for t in tokens)


def flat(expr: Any, resolve: Resolver) -> str:
    """``expr`` on one line."""
    if isinstance(expr, Raw):
        return expr.text
    if isinstance(expr, Slot):
        return resolve(expr)
    if isinstance(expr, Use):
        return flat(Call(expr.draft.class_name, [(None, a) for a in expr.args]), resolve)
    if isinstance(expr, Call):
        parts = [(f"{k}=" if k else "") + flat(v, resolve) for k, v in expr.args]
        return f"{expr.func}({', '.join(parts)})"
    raise AssertionError(f"not an expression: {expr!r}")


def layout(expr: Any, indent: int, head: str, tail: str, resolve: Resolver) -> list[str]:
    """``head + expr + tail`` as lines at ``indent`` spaces, exploded where it does not fit."""
    pad = " " * indent
    if isinstance(expr, Seq):
        lines = [f"{pad}{head}{expr.func}("]
        for item, comment in expr.items:
            note = f"  # {tokens_text(comment, resolve)}" if comment else ""
            inner = layout(item, indent + 4, "", ",", resolve)
            if len(inner) == 1 and len(inner[0]) + len(note) <= WIDTH:
                lines.append(inner[0] + note)
            else:  # the comment goes above the element
                lines += ([f"{pad}    {note.strip()}"] if note else []) + inner
        return [*lines, f"{pad}){tail}"]
    one = f"{pad}{head}{flat(expr, resolve)}{tail}"
    if len(one) <= WIDTH or not isinstance(expr, (Call, Use)) or not _args(expr):
        return [one]
    func = expr.func if isinstance(expr, Call) else expr.draft.class_name
    lines = [f"{pad}{head}{func}("]
    joined = ", ".join((f"{k}=" if k else "") + flat(v, resolve) for k, v in _args(expr))
    if len(pad) + 4 + len(joined) <= WIDTH:  # the arguments on one line of their own
        return [*lines, f"{pad}    {joined}", f"{pad}){tail}"]
    for keyword, value in _args(expr):
        lines += layout(value, indent + 4, f"{keyword}=" if keyword else "", ",", resolve)
    return [*lines, f"{pad}){tail}"]


def _args(expr: Call | Use) -> list[tuple[str | None, Any]]:
    return expr.args if isinstance(expr, Call) else [(None, a) for a in expr.args]


def render_statement(
    indent: int, head: str, expr: Any, comment: list[Any] | None, resolve: Resolver
) -> list[str]:
    """``head + expr  # comment``; the comment moves above a statement it would make too long."""
    lines = layout(expr, indent, head, "", resolve)
    if not comment:
        return lines
    note = f"# {tokens_text(comment, resolve)}"
    if len(lines) == 1 and len(lines[0]) + 2 + len(note) <= WIDTH:
        return [f"{lines[0]}  {note}"]
    return [" " * indent + note, *lines]


# -- torchspec's own modules, written out -------------------------------------------------------
# Each as torchspec.nn defines it (same constructor keywords, same state_dict), only torch imported.
HELPERS: dict[str, str] = {
    "Reshape": '''
class Reshape(nn.Module):
    """x.reshape(N, *shape), or x.reshape(*shape) with include_batch."""

    def __init__(self, shape: tuple[int, ...], include_batch: bool = False) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.include_batch = include_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.include_batch:
            return x.reshape(*self.shape)
        return x.reshape(x.shape[0], *self.shape)
''',
    "Permute": '''
class Permute(nn.Module):
    """x.permute(dims)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)
''',
    "Mean": '''
class Mean(nn.Module):
    """x.mean(dim, keepdim)."""

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = (dim,) if isinstance(dim, int) else tuple(dim)
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=self.keepdim)
''',
    "Select": '''
class Select(nn.Module):
    """x.select(dim, index)."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)
''',
    "StochasticDepth": '''
class StochasticDepth(nn.Module):
    """Drops a residual branch in training (torchvision's rule); eval(): identity."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [1] * x.ndim  # mode "batch": one draw for the whole batch
        if self.mode == "row":  # one per sample
            size[0] = x.shape[0]
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise = noise.div_(survival)
        return x * noise
''',
    "PositionalEncoding": '''
class PositionalEncoding(nn.Module):
    """x + pe[:T] for x of (N, T, d_model): sinusoidal positions, or learned."""

    def __init__(self, d_model: int, max_len: int, learned: bool = False) -> None:
        super().__init__()
        self.max_len = max_len
        if learned:
            self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32)[:, None]
            steps = torch.arange(0, d_model, 2, dtype=torch.float32)
            rate = torch.exp(steps * (-9.210340371976184 / d_model))  # -log(10000) / d
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(position * rate)
            table[:, 1::2] = torch.cos(position * rate[: d_model // 2])
            self.register_buffer("pe", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        table = self.weight if hasattr(self, "weight") else self.pe
        return x + torch.narrow(table, 0, 0, x.shape[1])  # the first T positions
''',
    "LayerNorm2d": '''
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W), channels last and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)
''',
}
# Chunk and Split return tuples: inside an nn.Sequential they cannot occur (a tuple makes a graph)
