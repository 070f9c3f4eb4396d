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


# A small CNN that trains in about a second: 36 train / 12 validation samples, 3 steps an epoch.
TINY_CNN = """\
name: tiny_cnn
input: [1, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - Flatten
  - {type: Linear, out_features: 5}
train:
  data: {source: random, samples: 48, classes: 5, val_fraction: 0.25}
  batch_size: 12
  epochs: 2
  optimizer: {type: SGD, lr: 0.1}
  output_dir: OUT
"""


def write_spec(tmp_path: Path, text: str, name: str = "spec", out: str = "run", extra: str = "") -> Path:
    """Write `text` (then `extra`) to tmp_path/<name>.yaml, its OUT placeholder made tmp_path/<out>."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("OUT", str(tmp_path / out)) + extra)
    return path
