"""Golden error output: the full text a user sees for each bad spec in ``tests/data/bad``.

Each ``tests/data/bad/NAME.yaml`` (or ``.json``) fails; ``str(SpecError)`` (every message, source
line, caret and hint, exactly as ``torchspec check`` prints it) must equal
``tests/golden_errors/NAME.txt``. After an intended wording change, regenerate with::

    TORCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_errors.py

and read every changed file: these are what users read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import torchspec
from torchspec import SpecError

HERE = Path(__file__).resolve().parent
BAD = HERE / "data" / "bad"
GOLDEN = HERE / "golden_errors"
UPDATE = os.environ.get("TORCHSPEC_UPDATE_GOLDEN") == "1"

SPECS = sorted(p.name for p in BAD.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def error_text(name: str) -> str:
    """What ``torchspec check NAME`` prints to stderr, run from the bad-spec folder."""
    with pytest.raises(SpecError) as info:
        torchspec.infer_shapes(name)
    return str(info.value) + "\n"


def test_there_are_golden_cases() -> None:
    assert len(SPECS) >= 10


@pytest.mark.parametrize("name", SPECS)
def test_golden_error(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    text = error_text(name)
    golden = GOLDEN / (Path(name).stem + ".txt")
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with TORCHSPEC_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SPECS)
def test_golden_text_reads_like_a_compiler(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every problem: ``FILE:LINE:COL: error: ``, the source line, a caret; no pydantic phrasing."""
    monkeypatch.chdir(BAD)
    text = error_text(name)
    lines = text.splitlines()
    assert lines[0].startswith(f"{name}:")
    for index, line in enumerate(lines):
        if ": error: " in line:
            assert line.startswith(f"{name}:")
            assert lines[index + 2].rstrip().endswith("^")
    for phrase in ("Input should", "input should", "Field required", "Value error", "after validation"):
        assert phrase not in text
