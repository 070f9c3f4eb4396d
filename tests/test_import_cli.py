"""``torchspec import`` on the command line, in real processes: it says what it imports before
importing it, writes a spec that ``torchspec check`` accepts and that is the model (torchvision's
state_dict loads strictly, the outputs agree), and every mistake is one clear error (exit 1, no
traceback, no file), usage errors exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import cli

import torchspec

ROOT = Path(__file__).resolve().parent.parent

USER_MODULE = """
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.stderr.write("user module imported\\n")


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.fc = nn.Linear(width, 3)

    def forward(self, x):
        y = F.relu(self.conv(x)) + x
        return self.fc(torch.flatten(y.mean([2, 3], keepdim=True), 1))


class MyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 1, 3, 3))

    def forward(self, x):
        return F.conv2d(x, self.weight)


def custom():
    return nn.Sequential(MyConv(), nn.ReLU())
"""


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m torchspec import ARGS`` in ``cwd`` (where a user's module sits)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torchspec", "import", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_torchvision_model_then_check_and_load(tmp_path: Path) -> None:
    out = tmp_path / "squeezenet.yaml"
    done = run(
        tmp_path,
        "torchvision.models:squeezenet1_1",
        "--arg",
        "num_classes=10",
        "--input",
        "3,32,32",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "torchspec import: importing torchvision.models (as named on the command line)" in done.stderr
    assert "Traceback" not in done.stderr
    text = out.read_text()
    assert text.startswith(
        "# torchspec import torchvision.models:squeezenet1_1 --input 3,32,32\nname: squeezenet1_1\n"
    )
    assert "input: [3, 32, 32]\n" in text
    checked = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", str(out)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    torch.manual_seed(0)
    original = torchvision.models.squeezenet1_1(num_classes=10).eval()
    model = torchspec.build(out).eval()
    model.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), rtol=1e-5, atol=1e-5)


def test_the_torchspec_script_finds_a_module_in_the_working_directory(tmp_path: Path) -> None:
    """The console script (unlike `python -m`) has no working directory on sys.path; a model file
    beside the user, e.g. one `torchspec export --to python` wrote, must still import."""
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    script = "import sys; from torchspec.cli import entry; sys.argv[0] = 'torchspec'; entry()"
    # -I: no working directory (nor PYTHONPATH) on sys.path, as for the installed script
    command = [
        sys.executable,
        "-I",
        "-c",
        script,
        "import",
        "usernet:Net",
        "--input",
        "1,6,6",
        "-o",
        "n.yaml",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "n.yaml").read_text().count("type: Conv2d") == 1


def test_user_module_is_named_before_it_is_imported(tmp_path: Path) -> None:
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    done = run(tmp_path, "usernet:Net", "--arg", "width=4", "--input", "1,6,6", "-o", "net.yaml")
    assert done.returncode == 0, done.stderr
    consent = done.stderr.index("torchspec import: importing usernet (as named on the command line)")
    assert consent < done.stderr.index("user module imported")
    spec = torchspec.load_spec(tmp_path / "net.yaml")
    assert torchspec.infer_shapes(spec).output == (1, 3)


def test_custom_leaf_fails_clearly_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "usernet_custom.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "custom.yaml"
    done = cli("import", "usernet_custom:custom", "--input", "1,6,6", "-o", str(out))
    assert done.returncode == 1
    line = USER_MODULE.splitlines().index("        return F.conv2d(x, self.weight)") + 1
    assert "torchspec import: error: 0 (MyConv, defined at " in done.stderr
    assert f"usernet_custom.py:{line}: return F.conv2d(x, self.weight)" in done.stderr
    assert not out.exists()


def test_module_that_cannot_be_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = str(tmp_path / "x.yaml")
    for target, said in [
        ("no_such_module_here:f", "cannot import no_such_module_here: ModuleNotFoundError"),
        ("broken_at_import:f", "cannot import broken_at_import: RuntimeError: boom"),
    ]:
        done = cli("import", target, "--input", "3", "-o", out)
        assert done.returncode == 1
        assert f"torchspec import: error: {said}" in done.stderr
        assert "Traceback" not in done.stderr
    assert not Path(out).exists()


def _usage(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        cli("import", *args)
    return int(done.value.code or 0)


def test_usage_and_factory_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "x.yaml")
    assert _usage("torchvision.models:resnet18", "--input", "3,0", "-o", out) == 2
    assert _usage("torchvision.models:resnet18", "--input", "3", "-o", "x.txt") == 2
    assert _usage("torchvision.models:resnet18", "--input", "3", "--arg", "1x", "-o", out) == 2
    done = cli("import", "torchvision.models:resnet18", "--input", "3", "-o", str(tmp_path / "no" / "x.yaml"))
    assert done.returncode == 1
    assert "torchspec import: error: cannot write" in done.stderr and "does not exist" in done.stderr
    assert "importing" not in done.stderr  # refused before anything is imported
    done = cli("import", "torchvision.models.resnet18", "--input", "3,8,8", "-o", out)
    assert done.returncode == 1
    assert "error: 'torchvision.models.resnet18' is not MODULE_PATH:FACTORY" in done.stderr
    done = cli("import", "torchvision.models:no_such_model", "--input", "3,8,8", "-o", out)
    assert "error: torchvision.models has no no_such_model" in done.stderr
    done = cli("import", "torchvision.models:resnet18", "--arg", "bogus=1", "--input", "3,8,8", "-o", out)
    assert done.returncode == 1
    assert "torchvision.models:resnet18(...) failed: TypeError" in done.stderr
    assert not Path(out).exists()


MLP = """
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 2))


def lstm():
    return nn.Sequential(nn.LSTM(4, 8))


def rgb_stem():  # made for 4x4 images: the 224x224 guess fails at the Linear, and says it guessed
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 2 * 2, 2))
"""


def test_without_input_the_shape_is_read_from_the_first_layer(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(USER_MODULE + MLP)
    done = run(tmp_path, "nets:Net", "--arg", "width=4", "-o", "net.yaml")
    assert done.returncode == 0, done.stderr
    assert "no --input: assuming 1,224,224 from conv (Conv2d, 1 input channels)" in done.stderr
    assert torchspec.load_spec(tmp_path / "net.yaml").input_shape == (1, 224, 224)
    done = run(tmp_path, "nets:mlp", "-o", "mlp.yaml")
    assert done.returncode == 0, done.stderr
    assert torchspec.load_spec(tmp_path / "mlp.yaml").input_shape == (12,)


def test_without_input_a_sequence_model_or_a_wrong_guess_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(MLP)
    done = run(tmp_path, "nets:lstm", "-o", "lstm.yaml")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no --input, and the model's first layer 0 (LSTM) does not say how long" in done.stderr
    assert not (tmp_path / "lstm.yaml").exists()
    done = run(tmp_path, "nets:rgb_stem", "-o", "rgb.yaml")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        "hint: no --input was given: 3,224,224 was assumed from 0 (Conv2d, 3 input channels)" in done.stderr
    )
    assert not (tmp_path / "rgb.yaml").exists()
