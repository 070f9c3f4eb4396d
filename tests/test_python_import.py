"""A `source: python` module is found the same way however torchspec is launched (the `torchspec`
script or `python -m torchspec`): in the working directory, then in the spec's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = """\
import torch


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return torch.full((4,), float(i)), i % 3
"""


@pytest.mark.parametrize("launcher", ["script", "module"])
@pytest.mark.parametrize("place", ["spec folder", "working directory"])
def test_the_module_is_found_in_the_spec_folder_and_the_cwd(
    tmp_path: Path, launcher: str, place: str
) -> None:
    specs, cwd = tmp_path / "specs", tmp_path / "work"
    specs.mkdir()
    cwd.mkdir()
    module = f"user_data_{launcher}_{place.split()[0]}"
    (specs if place == "spec folder" else cwd).joinpath(f"{module}.py").write_text(MODULE)
    (specs / "spec.yaml").write_text(
        "name: py\ninput: [4]\nlayers:\n  - {type: Linear, out_features: 3}\ntrain:\n"
        f"  data: {{source: python, target: '{module}:Data'}}\n  batch_size: 8\n  epochs: 1\n"
        f"  output_dir: {tmp_path / 'run'}\n"
    )
    script = Path(sys.executable).parent / "torchspec"
    command = [str(script)] if launcher == "script" else [sys.executable, "-m", "torchspec"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [*command, "train", str(specs / "spec.yaml"), "--allow-code", "--quiet"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"importing {module}" in result.stderr and (tmp_path / "run" / "model.safetensors").exists()
