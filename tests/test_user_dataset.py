"""Mistakes in a user's Dataset end as errors at the user's file and line, with their frames only.

Each case is a real module run by a real `torchspec train --allow-code` subprocess (with and without
DataLoader workers, which re-raise from another process); the line marked ``# HERE`` is where the
error must point. Exit code 1 (never 0: a module calling sys.exit(0) is an error), no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import torchspec
from torchspec.errors import SpecError

REPO = str(Path(__file__).resolve().parent.parent)
HEAD = "import sys\nimport numpy as np\nimport torch\nfrom torch.utils.data import Dataset\n"


def dataset(getitem: str = "return torch.zeros(4), i % 3", length: str = "return 40") -> str:
    return (
        HEAD
        + "class Data(Dataset):\n"
        + f"    def __len__(self):\n        {length}\n"
        + f"    def __getitem__(self, i):\n        {getitem}\n"
    )


CASES = {
    # name: (module source, words the message must hold)
    "import_error": (HEAD + "import no_such_dependency  # HERE\n", "ModuleNotFoundError"),
    "name_error": (HEAD + "x = undefined_name + 1  # HERE\n", "NameError"),
    "syntax_error": (HEAD + "def f(:  # HERE\n    pass\n", "SyntaxError"),
    "exit_0": (HEAD + "sys.exit(0)  # HERE\n", "called sys.exit(0)"),
    "exit_3": (HEAD + "sys.exit(3)  # HERE\n", "called sys.exit(3)"),
    "init_raises": (
        HEAD + "class Data(Dataset):\n    def __init__(self):\n"
        "        raise ValueError('bad root')  # HERE\n"
        "    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), 0\n",
        "ValueError: bad root",
    ),
    "getitem_raises": (
        HEAD + "def helper(i):\n    return [0][i]  # HERE\n"
        "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):\n        return helper(i), 0\n",
        "IndexError",
    ),
    "getitem_raises_later": (
        dataset("return torch.zeros(4) / (i - 21) if i != 21 else 1 // 0, 0  # HERE"),
        "ZeroDivisionError",
    ),
    "three_tuple": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):  # HERE\n        return torch.zeros(4), 0, 1\n",
        "a tuple of 3 items",
    ),
    "single_tensor": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):  # HERE\n        return torch.zeros(4)\n",
        "returned a Tensor",
    ),
    "ragged": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):  # HERE\n        return torch.zeros(4 + (i == 30)), 0\n",
        "every sample must have the same shapes",
    ),
    "string_input": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):  # HERE\n        return 'abcd', 0\n",
        "its input is a str",
    ),
    "complex_input": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        return 40\n"
        "    def __getitem__(self, i):  # HERE\n        return torch.zeros(4, dtype=torch.complex64), 0\n",
        "complex numbers",
    ),
    "len_negative": (
        HEAD + "class Data(Dataset):\n    def __len__(self):  # HERE\n        return -1\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), 0\n",
        "__len__ returned -1",
    ),
    "len_float": (
        HEAD + "class Data(Dataset):\n    def __len__(self):  # HERE\n        return 4.5\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), 0\n",
        "__len__ returned 4.5",
    ),
    "len_raises": (
        HEAD + "class Data(Dataset):\n    def __len__(self):\n        raise RuntimeError('no len')  # HERE\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), 0\n",
        "RuntimeError: no len",
    ),
    "exit_in_getitem": (dataset("sys.exit(0)  # HERE"), "called sys.exit(0)"),
    "no_len": (
        HEAD + "class Data(Dataset):  # HERE\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), 0\n",
        "not a map-style Dataset",
    ),
    "iterable": (
        HEAD + "class Data(torch.utils.data.IterableDataset):  # HERE\n"
        "    def __iter__(self):\n        yield torch.zeros(4), 0\n",
        "not a map-style Dataset",
    ),
}


def write(tmp_path: Path, case: str) -> tuple[str, Path, int, str]:
    """(module name, its file, the line marked # HERE, words the error must hold)."""
    source, words = CASES[case]
    module = f"user_{case}_{tmp_path.name}"  # unique: each test imports its own module
    path = tmp_path / f"{module}.py"
    path.write_text(source)
    line = next(n for n, text in enumerate(source.splitlines(), 1) if "# HERE" in text)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: user\ninput: [4]\nlayers:\n  - {type: Linear, out_features: 3}\ntrain:\n"
        f"  data: {{source: python, target: '{module}:Data'}}\n"
        f"  batch_size: 8\n  epochs: 1\n  output_dir: {tmp_path / 'run'}\n"
    )
    return module, path, line, words


def check(text: str, tmp_path: Path, path: Path, line: int, words: str) -> None:
    assert "Traceback" not in text, text
    assert f"{path}:{line}:" in text, text  # their file, their line
    assert words in text, text
    assert f"{tmp_path / 'spec.yaml'}:6" in text  # and where the source is declared
    assert "torchspec/training" not in text  # their frames, not ours
    assert not (tmp_path / "run" / "last.ckpt").exists()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_user_dataset_mistake_is_located_in_their_file(tmp_path: Path, case: str, workers: int) -> None:
    module, path, line, words = write(tmp_path, case)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(SpecError) as info:
            torchspec.train(
                tmp_path / "spec.yaml", [f"train.num_workers={workers}"], quiet=True, allow_code=True
            )
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)
    check(str(info.value), tmp_path, path, line, words)


@pytest.mark.parametrize(
    ("case", "workers"), [("exit_0", 0), ("ragged", 2), ("getitem_raises", 2), ("syntax_error", 0)]
)
def test_the_command_line_exits_1_with_the_users_location(tmp_path: Path, case: str, workers: int) -> None:
    _, path, line, words = write(tmp_path, case)
    env = {
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMP_NUM_THREADS": "1",
    }
    spec = str(tmp_path / "spec.yaml")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torchspec",
            "train",
            spec,
            "--allow-code",
            "--quiet",
            "--set",
            f"train.num_workers={workers}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr  # sys.exit(0) in their module is no success
    check(result.stderr, tmp_path, path, line, words)
