"""README's "Models" table is true: every row's input, params and MACs are what `check` computes for
its spec (and variant), and every spec in specs/ (every variant of it) has a row.

A zoo spec gets into the README by adding a row; this test then holds the row to the spec.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torchspec import infer_shapes, load_spec
from torchspec.report import format_macs
from torchspec.source import load_document

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
# | resnet50 | [3, 224, 224] | 25,557,032 | 4.09G | [resnet.yaml](specs/resnet.yaml) `--variant resnet50` | |
ROW = re.compile(
    r"^\| (?P<name>[^|]+?) \| (?P<input>\[[\d, ]+\]) \| (?P<params>[\d,]+) \| (?P<macs>[\d.]+[KMGT]?) "
    r"\| \[(?P<file>[^\]]+)\]\(specs/(?P=file)\)(?: `--variant (?P<variant>[\w.-]+)`)? \|(?P<notes>.*)\|$"
)


def _table() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1:-1] == [" model ", " input ", " params ", " MACs ", " spec ", " notes "]
    return lines[2:]


ROWS = _table()


def test_every_row_is_one_spec_row() -> None:
    bad = [line for line in ROWS if not ROW.match(line)]
    assert not bad, "rows not of the form | name | [input] | params | MACs | [file](specs/file) ... |"
    keys = [(m["file"], m["variant"]) for m in map(ROW.match, ROWS) if m]
    assert len(keys) == len(set(keys)), "a spec (and variant) has two rows"


@pytest.mark.parametrize("row", ROWS, ids=[line.split("|")[1].strip() for line in ROWS])
def test_the_row_is_what_check_computes(row: str) -> None:
    match = ROW.match(row)
    assert match, row
    spec = load_spec(SPECS / match["file"], variant=match["variant"])
    report = infer_shapes(spec)
    assert match["input"] == str(list(spec.input_shape))
    assert match["params"] == f"{report.params:,}"
    assert match["macs"] == format_macs(report.macs)


def test_every_spec_and_variant_has_a_row() -> None:
    shown = {(m["file"], m["variant"]) for m in map(ROW.match, ROWS) if m}
    files = {file for file, _ in shown}
    missing = []
    for path in sorted(SPECS.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        variants = load_document(path).data.get("variants") or {}
        missing += [f"{path.name} --variant {v}" for v in variants if (path.name, v) not in shown]
        if not variants and path.name not in files:
            missing.append(path.name)
    assert not missing, f"specs without a row in README's Models table: {missing}"
