"""The compiler reads one way: no two torchspec modules import each other, and each stage only
looks down (text with positions -> validated spec -> wired graph -> shapes -> torch module, with
the diagnostics beneath all of them).

Imports are read from the source with ``ast``: module-level, function-level and ``TYPE_CHECKING``
ones alike (a function-level import is still a dependency, only a deferred one). A package's
``__init__`` counts as the package's module; a submodule's implicit import of its parent package
(Python's doing, not the code's) does not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "torchspec"

# The stages of the compiler, lowest first. A module of a stage imports only modules of its own
# stage or lower ones; below the last stage, none imports a module outside these sets (training's
# loop, cli, report...: above them all). The torch stage may use helpers outside (fileio, memory).
STAGES: list[tuple[str, set[str]]] = [
    (
        "diagnostics",
        {"errors", "lookalikes", "diagnose", "wording", "value_rules", "messages", "pydantic_errors"}
        | {"catalogue"},
    ),
    ("text", {"scalars", "document", "source_yaml", "source", "source_json"}),
    (
        "spec",
        {"expr_parse", "expr", "template", "blocks", "expand_values", "wiring", "expand", "layers"}
        | {"inputs", "spec"}
        # the train section's rules, validated with the spec
        | {
            f"training.{m}"
            for m in (
                *("config", "config_fields", "data_config", "optim_config", "tuning_config"),
                *("folder_config", "transform_config", "overrides", "validate"),
            )
        },
    ),
    ("graph", {"graph"}),
    ("shapes", {"shape_errors", "state_order", "dtype_flow", "shape_report", "infer"}),
    ("torch", {"model_file", "builder"}),
]


def _modules() -> dict[str, Path]:
    """Every torchspec module by dotted name relative to the package ("" is torchspec itself)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """``torchspec.layers.fields`` -> ``layers.fields``; None for anything outside torchspec."""
    if name == "torchspec":
        return ""
    return name.removeprefix("torchspec.") if name.startswith("torchspec.") else None


def _imports(name: str) -> dict[str, int]:
    """The torchspec modules ``name`` imports, each with the line of its first import."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [_target(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's package
                base = ["torchspec", *package][: len(package) + 2 - node.level]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            base_target = _target(module)
            if base_target is None:
                continue
            # `from torchspec import spec` imports the submodule torchspec.spec
            targets = [
                sub if (sub := f"{base_target}.{a.name}".lstrip(".")) in MODULES else base_target
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target is not None and target != name and target in MODULES:
                out.setdefault(target, node.lineno)
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def _stage_of(name: str) -> int | None:
    for rank, (_label, members) in enumerate(STAGES):
        if name in members or any(name.startswith(m + ".") for m in members):
            return rank
    return None


def test_the_parser_sees_the_imports_it_must() -> None:
    # the reader itself: known edges of every kind (module-level, function-level, package import)
    assert "errors" in GRAPH["diagnose"]
    assert "document" in GRAPH["source_json"]
    assert "source_json" in GRAPH["source"]  # a function-level import
    assert "builder" in GRAPH[""]  # under TYPE_CHECKING in torchspec/__init__.py
    assert "training.loop" in GRAPH["cli.train"]
    assert len(MODULES) > 60


def test_no_two_modules_import_each_other() -> None:
    cycles = _cycles()
    shown = [
        " <-> ".join(c) + ": " + "; ".join(f"{a} imports {sorted(set(GRAPH[a]) & set(c))}" for a in c)
        for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(shown)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _stage_of(n) is not None))
def test_each_stage_only_looks_down(name: str) -> None:
    rank = _stage_of(name)
    assert rank is not None
    upward = {
        f"torchspec.{target} ({STAGES[there][0] if there is not None else 'above all stages'}, line {line})"
        for target, line in GRAPH[name].items()
        if ((there := _stage_of(target)) is None and rank < len(STAGES) - 1)
        or (there is not None and there > rank)
    }
    assert not upward, f"torchspec.{name} ({STAGES[rank][0]}) imports a higher stage: {sorted(upward)}"


def test_the_lower_stages_stay_small() -> None:
    # diagnostics and text import only each other (beneath them: the standard library, pydantic, yaml)
    low = STAGES[0][1] | STAGES[1][1]
    for name in sorted(low):
        assert name in MODULES, f"torchspec.{name} is listed as a stage module but does not exist"
        assert set(GRAPH[name]) <= low, f"torchspec.{name} imports {sorted(set(GRAPH[name]) - low)}"
    for name in sorted(STAGES[0][1]):
        assert set(GRAPH[name]) <= STAGES[0][1], f"diagnostics module {name} imports {sorted(GRAPH[name])}"
