"""Coverage-guided fuzzing (atheris): only our own clear errors may come out of any reader.

Each target of ``fuzz/targets.py`` runs under libFuzzer for a bounded time
(``TORCHSPEC_FUZZ_SECONDS`` per target, default 8: about a minute of fuzzing for all of them), printing its
executions and coverage; a crash fails the test with the input saved (``-artifact_prefix``, in
``TORCHSPEC_FUZZ_ARTIFACTS`` or the test's tmp folder). Every crash ever found is kept in
``fuzz/crashes/TARGET/`` and replayed here, in process, as a regression test.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import KNOWN, TARGETS
from torchspec.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
CRASHES = ROOT / "fuzz" / "crashes"
SECONDS = int(os.environ.get("TORCHSPEC_FUZZ_SECONDS", "8"))
# targets whose readers belong to other modules and still have known crashes (fuzz.targets.KNOWN)
OPEN = {target: where for target, _kind, where in KNOWN}


def _marks(target: str) -> list[pytest.MarkDecorator]:
    if target in OPEN:
        return [pytest.mark.xfail(reason=f"known crash, reported: {OPEN[target]}", strict=False)]
    return []


@pytest.mark.parametrize("target", [pytest.param(t, marks=_marks(t)) for t in TARGETS])
def test_fuzz_target_raises_only_spec_errors(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    artifacts = Path(os.environ.get("TORCHSPEC_FUZZ_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, str(ROOT / "fuzz" / "run.py"), target, f"-max_total_time={SECONDS}",
        f"-artifact_prefix={artifacts}/{target}-", "-rss_limit_mb=4096", "-max_len=4096",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TORCHSPEC_FUZZ_SKIP_KNOWN", None)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=SECONDS + 300)
    log = result.stdout + result.stderr
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)", log)
    runs = re.findall(r"Done (\d+) runs in (\d+) second", log)
    print(f"{target}: executions {runs[-1][0] if runs else '?'}, coverage {done[-1][1:] if done else '?'}")
    saved = sorted(str(p) for p in artifacts.glob(f"{target}-crash-*"))
    assert result.returncode == 0, f"crash saved as {saved}:\n{log[-4000:]}"
    assert done and int(done[-1][0]) > 0  # it really ran inputs through the target


CASES = sorted((p.parent.name, p) for p in CRASHES.glob("*/*") if p.is_file())


def test_the_crash_corpus_is_not_empty() -> None:
    assert CASES and all(target in TARGETS for target, _ in CASES)


@pytest.mark.parametrize(
    ("target", "path"),
    [pytest.param(t, p, marks=_marks(t), id=f"{t}/{p.name}") for t, p in CASES],
)
def test_every_crash_found_is_a_regression_test(target: str, path: Path) -> None:
    with contextlib.suppress(SpecError):  # a clear refusal is fine; anything else fails the test
        TARGETS[target](path.read_bytes())
