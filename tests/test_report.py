"""The human output of ``torchspec check`` / ``build`` (rich tables, module tree) and its JSON.

Golden files: ``tests/golden/*.txt`` hold the exact stdout of the commands in ``GOLDEN`` run from
the repository root with stdout not a terminal (so no colours and a width of 120). After an
intended change to the output, regenerate them and review the diff before committing::

    TORCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py

The goldens only use ``specs/c3d.yaml`` and the specs in ``tests/data/``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from torchspec import infer_shapes
from torchspec.report import (
    DEFAULT_WIDTH,
    dumps_json,
    format_bytes,
    format_macs,
    format_shape,
    make_console,
    render_table,
    render_tree,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / "tests" / "golden"
UPDATE = os.environ.get("TORCHSPEC_UPDATE_GOLDEN") == "1"
_RICH_ENV = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")

GOLDEN = {
    "check_c3d_table": ["check", "specs/c3d.yaml"],
    "check_c3d_json": ["check", "specs/c3d.yaml", "--format", "json"],
    "check_local_table_batch2": ["check", "tests/data/small.yaml", "tests/data/tiny.json", "--batch", "2"],
    "check_local_json": ["check", "tests/data/small.yaml", "tests/data/tiny.json", "--format", "json"],
    "build_small": ["build", "tests/data/small.yaml", "--seed", "0"],
}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    environ = {k: v for k, v in os.environ.items() if k not in _RICH_ENV}
    environ["PYTHONIOENCODING"] = "utf-8"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden(name: str) -> None:
    proc = run_cli(*GOLDEN[name])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    path = GOLDEN_DIR / f"{name}.txt"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(proc.stdout, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing; run with TORCHSPEC_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert proc.stdout == expected, f"output differs from {path.name} (TORCHSPEC_UPDATE_GOLDEN=1 updates)"


def test_golden_c3d_table_says_the_right_things() -> None:
    """Independent of the golden file: the c3d numbers checked against the paper's architecture."""
    text = (GOLDEN_DIR / "check_c3d_table.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "c3d (specs/c3d.yaml)"
    assert "Total params:          79,991,015" in lines
    assert "Trainable params:      79,991,015" in lines
    assert "Non-trainable params:  0" in lines
    assert "Input shape:           [1, 3, 16, 112, 112]" in lines
    assert "Output shape:          [1, 487]" in lines
    assert "Parameter memory:      319.96 MB (params + buffers, float32)" in lines
    rows = {line.split()[0]: line for line in lines if line.startswith(" ") and "[" in line}
    assert re.search(
        r"Conv3d\(3, 64, kernel_size=3, padding=1\)\s+\[1, 64, 16, 112, 112\]\s+5,248\s+1\.04G$",
        rows["conv1"],
    )
    assert re.search(r"\[1, 512, 1, 4, 4\]\s+0\s+0$", rows["pool5"])
    assert re.search(r"Linear\(8192, 4096\)\s+\[1, 4096\]\s+33,558,528\s+33\.55M$", rows["fc6"])
    assert re.search(r"Linear\(4096, 487\)\s+\[1, 487\]\s+1,995,239\s+1\.99M$", rows["fc8"])
    assert max(len(line) for line in lines) <= DEFAULT_WIDTH
    data = json.loads((GOLDEN_DIR / "check_c3d_json.txt").read_text(encoding="utf-8"))
    assert (data["params"], data["output"]) == (79_991_015, [1, 487])


def test_output_has_no_colour_and_a_fixed_width_off_a_terminal() -> None:
    plain = run_cli("check", "specs/c3d.yaml")
    forced = run_cli("check", "specs/c3d.yaml", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b[" not in plain.stdout
    assert forced.stdout == plain.stdout  # colour is never forced into a pipe
    assert all(line == line.rstrip() for line in plain.stdout.splitlines())  # no padding blanks


def test_columns_sets_the_width_off_a_terminal() -> None:
    wide = run_cli("check", "specs/c3d.yaml")
    narrow = run_cli("check", "specs/c3d.yaml", env={"COLUMNS": "80"})
    assert narrow.returncode == 0
    assert max(map(len, wide.stdout.splitlines())) > 80
    assert max(map(len, narrow.stdout.splitlines())) <= 80
    # nothing is cut off: the long constructors wrap, the numbers are all still there
    assert "79,991,015" in narrow.stdout and "[1, 512, 1, 4, 4]" in narrow.stdout


def test_make_console_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console(io.StringIO())
    assert (console.width, console.is_terminal, console.color_system) == (DEFAULT_WIDTH, False, None)
    monkeypatch.setenv("COLUMNS", "77")
    assert make_console(io.StringIO()).width == 77
    monkeypatch.setenv("COLUMNS", "wide")
    assert make_console(io.StringIO()).width == DEFAULT_WIDTH


@pytest.mark.parametrize(
    ("macs", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1.00K"),
        (221_184, "221.18K"),
        (999_999, "1000.00K"),
        (1_000_000, "1.00M"),
        (1_040_449_536, "1.04G"),
        (38_548_959_232, "38.55G"),
        (2 * 10**12, "2.00T"),
    ],
)
def test_format_macs(macs: int, text: str) -> None:
    assert format_macs(macs) == text


def test_format_bytes_and_shape() -> None:
    assert format_bytes(416) == "416 B"
    assert format_bytes(8_496) == "8.50 kB"
    assert format_bytes(319_964_060) == "319.96 MB"
    assert format_bytes(12_345_678_901) == "12,345.68 MB"
    assert format_shape((1, 64, 16, 112, 112)) == "[1, 64, 16, 112, 112]"


def test_dumps_json_keeps_shapes_on_one_line() -> None:
    data = {"a": [1, 2, 3], "b": [{"c": [-1, 20]}], "d": [], "e": ["x", "y"], "f": [1.5, 2]}
    text = dumps_json(data)
    assert json.loads(text) == data
    assert '"a": [1, 2, 3],' in text and '"c": [-1, 20]' in text
    assert text.endswith("}\n")


def test_render_table_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    report = infer_shapes(ROOT / "tests" / "data" / "small.yaml", batch=3)
    buffer = io.StringIO()
    render_table(report, make_console(buffer))
    lines = buffer.getvalue().splitlines()
    header = next(line for line in lines if "Layer" in line)
    assert header.split() == ["Layer", "Type", "Output", "shape", "Params", "MACs"]
    # every module has a row, in named_modules() order, nested ones indented under their parent
    for row in report.rows:
        line = next(line for line in lines if line.split() and line.split()[0] == row.path)
        depth = row.path.count(".")
        assert line.startswith(" " + "  " * depth + row.path + " ")
        assert row.summary in line and format_shape(row.output) in line
        assert line.split()[-2:] == [f"{row.params:,}", format_macs(row.macs)]
    containers = [line.split()[0] for line in lines if " Sequential " in line]
    assert containers == ["features", "features.block2"]
    assert "Buffers:               50" in lines
    assert "Total MACs:            834.82K (834,816, batch 3)" in lines
    assert report.macs == 834_816


def test_title_of_a_spec_without_a_file() -> None:
    data = {"name": "inline", "input": [4], "layers": [{"type": "Linear", "out_features": 2}]}
    buffer = io.StringIO()
    render_table(infer_shapes(data), make_console(buffer))
    assert buffer.getvalue().splitlines()[0] == "inline"


def test_markup_in_names_is_printed_verbatim(tmp_path: Path) -> None:
    spec = tmp_path / "odd.yaml"
    spec.write_text("name: '[bold]odd[/bold]'\ninput: [4]\nlayers: [{type: Linear, out_features: 2}]\n")
    buffer = io.StringIO()
    render_table(infer_shapes(spec), make_console(buffer))
    assert buffer.getvalue().splitlines()[0] == f"[bold]odd[/bold] ({spec})"


def test_render_tree_lines_are_torch_reprs() -> None:
    from torchspec.builder import build

    model = build(ROOT / "tests" / "data" / "small.yaml", seed=0)
    buffer = io.StringIO()
    render_tree(model, make_console(buffer), label="small")
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "small"
    body = [re.sub(r"^[\s│├└─]+", "", line) for line in lines[1:]]
    expected = []
    for path, module in model.named_modules():
        if not path:
            continue
        name = path.rsplit(".", 1)[-1]
        leaf = not list(module.children())
        expected.append(f"{name}: {module!r}" if leaf else f"{name}: {type(module).__name__}")
    assert body == expected
