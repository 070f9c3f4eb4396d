"""Human-readable output with rich: the shape table of a spec and the module tree of a built model.

Nothing here imports torch: :func:`render_tree` only walks ``named_children()`` and
``extra_repr()`` of whatever module it is given. Output is deterministic when stdout is not a
terminal (no colours, width 120 or ``$COLUMNS``), so it can be compared with golden files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from typing import IO, TYPE_CHECKING, Any

from torchspec.infer import LayerRow, ShapeReport
from torchspec.layers import Sequential
from torchspec.spec import walk_layers

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "DEFAULT_WIDTH",
    "dumps_json",
    "format_bytes",
    "format_macs",
    "format_shape",
    "format_table",
    "make_console",
    "render_table",
    "render_tree",
]

DEFAULT_WIDTH = 120  # columns when the output is not a terminal and $COLUMNS is unset
_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def make_console(file: IO[str] | None = None) -> Console:
    """A console for ``file`` (stdout by default).

    On a terminal: rich's own detection (terminal width, colours). Otherwise: no colours, no
    control codes, and a fixed width of ``$COLUMNS`` or :data:`DEFAULT_WIDTH`.
    """
    from rich.console import Console

    out = file if file is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    if callable(isatty) and isatty():
        return Console(file=out, highlight=False, emoji=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else DEFAULT_WIDTH
    return Console(
        file=out,
        width=width,
        force_terminal=False,
        force_jupyter=False,
        force_interactive=False,
        color_system=None,
        no_color=True,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )


def format_shape(shape: tuple[int, ...] | list[int]) -> str:
    """``[1, 64, 16, 112, 112]``: the batch dimension included, as torch prints ``.shape``."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def format_macs(macs: int) -> str:
    """MACs in human units with 3 significant-ish digits: ``999``, ``1.04G``, ``38.55G``."""
    for scale, unit in _UNITS:
        if macs >= scale:
            return f"{macs / scale:.2f}{unit}"
    return str(macs)


def format_bytes(n: int) -> str:
    """Decimal megabytes (``319.96 MB``), as torchinfo counts; below 1 MB in kB or bytes."""
    if n >= 10**6:
        return f"{n / 1e6:,.2f} MB"
    if n >= 10**3:
        return f"{n / 1e3:.2f} kB"
    return f"{n} B"


_INT_LIST = re.compile(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]")


def dumps_json(data: Any) -> str:
    """JSON with two-space indents and lists of ints (shapes) kept on one line; ends with a newline."""
    text = json.dumps(data, indent=2)
    return _INT_LIST.sub(lambda m: "[" + ", ".join(re.split(r",\s*", m[1])) + "]", text) + "\n"


def _title(report: ShapeReport) -> str:
    file = report.spec.document.file
    return f"{report.name} ({file})" if file and file != "<spec>" else report.name


def _table_rows(report: ShapeReport) -> list[tuple[int, str, str, str, str, str, str]]:
    """(depth, layer, type, output, params, macs, from) for every module, containers included.

    ``from`` lists what a layer reads when that is not just the layer before it (Keras'
    "Connected to"); it is empty for the rest.
    """
    leaves: dict[str, LayerRow] = {row.path: row for row in report.rows}
    sources = dict(report.container_sources or {})
    out: list[tuple[int, str, str, str, str, str, str]] = []
    for path, data_path, layer in walk_layers(report.spec.layers):
        depth = (len(data_path) - 2) // 2  # ("layers", i) at the top, +("layers", j) per level
        if isinstance(layer, Sequential):
            inside = [r for p, r in leaves.items() if p.startswith(path + ".")]
            shape = format_shape(inside[-1].output) if inside else ""
            kind = "GraphModule" if path in report.graphs else "Sequential"
            out.append((depth, path, kind, shape, "--", "--", ", ".join(sources.get(path, ()))))
            continue
        row = leaves[path]
        shown = format_shape(row.output)
        cells = (row.summary, shown, f"{row.params:,}", format_macs(row.macs), ", ".join(row.sources or ()))
        out.append((depth, path, *cells))
    return out


def format_table(report: ShapeReport, *, width: int | None = None, color: bool = False) -> str:
    """The shape table of one spec and its totals, as text (no rich: `check` stays light and fast).

    Columns: the module's dotted path (as in ``named_modules()``, indented by nesting), its
    constructor as torch would print it, the output shape with the batch, parameters and MACs.
    Nested ``Sequential`` containers get a row of their own (``--``: counted in their children).
    Past ``width`` columns the Type column wraps; ``color`` adds ANSI bold (for terminals).
    """
    bold = (lambda t: f"\033[1m{t}\033[0m") if color else (lambda t: t)
    header: tuple[str, ...] = ("Layer", "Type", "Output shape", "Params", "MACs", "From")
    rows = [("  " * depth + path, *cells) for depth, path, *cells in _table_rows(report)]
    if not any(r[5] for r in rows):  # a chain: no From column (every layer reads the one before)
        header, rows = header[:5], [r[:5] for r in rows]
    gaps = len(_GAP) * (len(header) - 1)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    if width is not None:  # give the Type column what the others leave, but at least 16
        widths[1] = min(widths[1], max(16, width - 1 - sum(widths) + widths[1] - gaps))

    def line(cells: tuple[str, ...] | list[str]) -> str:
        # text columns left-aligned, numbers right-aligned, three spaces between columns
        padded = [
            c.ljust(w) if i in (0, 1, 2, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return (" " + _GAP.join(padded)).rstrip()

    out = [bold(_title(report)), "", bold(line(header)), " " + "\u2500" * (sum(widths) + gaps)]
    for row in rows:
        fits = len(row[1]) <= widths[1]  # most rows: textwrap costs ~30 us a row (5,000-layer specs)
        first, *more = [row[1]] if fits else textwrap.wrap(row[1], widths[1], break_on_hyphens=False) or [""]
        out.append(line((row[0], first, *row[2:])))
        out += [line(("", part, *[""] * (len(header) - 2))) for part in more]
    out.append("")
    act = f"{format_bytes(report.activation_bytes)} (batch {report.batch}, float32 outputs of every layer)"
    totals = (
        ("Total params", f"{report.params:,}"),
        ("Trainable params", f"{report.trainable_params:,}"),
        ("Non-trainable params", f"{report.params - report.trainable_params:,}"),
        ("Buffers", f"{report.buffers:,}"),
        ("Parameter memory", f"{format_bytes(report.param_bytes)} (params + buffers, float32)"),
        ("Activation memory", act),
        ("Total MACs", f"{format_macs(report.macs)} ({report.macs:,}, batch {report.batch})"),
        ("Input shape", format_shape(report.input) + _ids(report)),
        ("Output shape", format_shape(report.output)),
    )
    out += [bold(f"{label + ':':<22}") + " " + value for label, value in totals]
    return "\n".join(out) + "\n"


_GAP = "   "


def _ids(report: ShapeReport) -> str:
    """`` (int64 token ids 0 .. 9999)`` for a token-id input, else nothing."""
    declared = report.spec.input_range
    if declared is None:
        return ""
    low, high = declared
    return f" (int64 token ids {low} .. {high - 1})" if high is not None else f" (int64 token ids from {low})"


def render_table(report: ShapeReport, console: Console | IO[str] | None = None) -> None:
    """Print :func:`format_table` to a rich console, a text stream, or stdout (bold on terminals)."""
    file: IO[str] = getattr(console, "file", None) or console or sys.stdout  # type: ignore[assignment]
    isatty = getattr(file, "isatty", None)
    color = bool(callable(isatty) and isatty()) and "NO_COLOR" not in os.environ
    # $COLUMNS, else the terminal's width, else DEFAULT_WIDTH (off a terminal)
    width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    file.write(format_table(report, width=width, color=color))
    file.flush()


def _module_line(name: str, module: Any) -> str:
    kind = type(module).__name__
    extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
    head = f"{name}: " if name else ""
    if any(True for _ in module.named_children()):
        return f"{head}{kind}"
    return f"{head}{kind}({extra})"


def render_tree(model: Any, console: Console | None = None, *, label: str | None = None) -> None:
    """Print the module tree of a built model: one node per child, leaves as their repr line."""
    from rich.text import Text
    from rich.tree import Tree

    console = console or make_console()

    def add(node: Tree, module: Any) -> None:
        if any(True for _ in module.named_children()):  # a container's own learned tensors first
            for name, tensor in module.named_parameters(recurse=False):
                node.add(Text(f"{name}: Parameter{format_shape(list(tensor.shape))}"))
        for name, child in module.named_children():
            add(node.add(Text(_module_line(name, child))), child)

    root = Tree(Text(label if label is not None else _module_line("", model), style="bold"))
    add(root, model)
    _emit(console, root)


def _emit(console: Console, renderable: Any) -> None:
    """Print; off a terminal, without the trailing blanks rich pads lines with (golden files)."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))
    console.file.flush()
