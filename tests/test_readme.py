"""What the README shows a new user is what the tool prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from torchspec.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_check_table_in_the_readme_is_the_real_output() -> None:
    shown = README.split("$ torchspec check specs/lenet5.yaml\n", 1)[1].split("$ torchspec build", 1)[0]
    real = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", "specs/lenet5.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert real.returncode == 0, real.stderr
    assert shown == real.stdout


def test_every_command_the_readme_names_exists() -> None:
    named = set(re.findall(r"`torchspec (\w+)", README)) | set(re.findall(r"\$ torchspec (\w+)", README))
    assert named, "the README names commands"
    assert named <= set(COMMANDS), named - set(COMMANDS)


def test_the_quickstart_has_exactly_two_commands() -> None:
    block = README.split("## Quickstart", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    install, _, job = lines[0].partition(" && ")
    assert install.startswith("pip install ") and '-e ".[test]"' in install, install
    assert job == "torchspec train specs/motion3d.yaml"
    assert lines[1] == "python -m pytest -q"
    # CI installs exactly as the Quickstart says and runs the same test command
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"python -m {install}" in ci and "python -m pytest -q" in ci
