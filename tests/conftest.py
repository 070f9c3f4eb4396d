"""Fixtures and helpers shared by the tests; the hypothesis profile (derandomized) for all of them.

`one_thread` is opt-in: a module that wants it says `pytestmark = pytest.mark.usefixtures("one_thread")`,
so the rest of the suite keeps torch's thread count. `write_spec` is imported by the modules that use it
(`from conftest import write_spec`; pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# The same examples on every machine and every run: CI must not turn red by chance.
settings.register_profile("torchspec", derandomize=True)
settings.load_profile("torchspec")


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Bitwise comparisons need the same thread count in and out of process; one thread also keeps
    # a busy 2-core machine from thrashing.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_spec(tmp_path: Path, text: str, name: str = "spec", out: str = "run", extra: str = "") -> Path:
    """Write `text` (then `extra`) to tmp_path/<name>.yaml, its OUT placeholder made tmp_path/<out>."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("OUT", str(tmp_path / out)) + extra)
    return path
