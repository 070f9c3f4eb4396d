"""User code runs only with the user's consent (--allow-code), and only a Dataset class is called.

Real subprocesses (`python -m torchspec`), real files: a spec naming code creates no file without
the flag, whatever the output format or how the source got into the spec (file or --set); with the
flag, anything that is not a torch Dataset subclass is refused before it is called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import torchspec
from torchspec.errors import SpecError
from torchspec.training.overrides import shown_argument

REPO = str(Path(__file__).resolve().parent.parent)

SPEC = """\
name: consent
input: [4]
layers:
  - {{type: Linear, out_features: 3}}
train:
  data: {data}
  batch_size: 8
  epochs: 1
  output_dir: {out}
"""

# Targets that would run something if called (or, for evilmod, if merely imported).
HOSTILE = [
    "{source: python, target: 'os:system', args: {command: 'touch MARK'}}",
    "{source: python, target: 'subprocess:call', args: {args: [touch, MARK]}}",
    "{source: python, target: 'subprocess:Popen', args: {args: [touch, MARK]}}",
    "{source: python, target: 'builtins:exec', args: {source: 'open(\"MARK\", \"w\")'}}",
    "{source: python, target: 'pathlib:Path', args: {}}",
    "{source: python, target: 'evilmod:Data', args: {}}",
    "{source: python, target: 'evilpkg.sub:Data', args: {}}",
]
EVIL = (
    "open({mark!r}, 'w').write('imported')\nimport torch\nclass Data(torch.utils.data.Dataset):\n    pass\n"
)


def setup(tmp_path: Path, data: str) -> tuple[Path, Path]:
    mark = tmp_path / "MARK"
    (tmp_path / "evilmod.py").write_text(EVIL.format(mark=str(mark)))
    (tmp_path / "evilpkg").mkdir(exist_ok=True)
    (tmp_path / "evilpkg" / "__init__.py").write_text(EVIL.format(mark=str(mark)))
    (tmp_path / "evilpkg" / "sub.py").write_text(EVIL.format(mark=str(mark)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(data=data.replace("MARK", str(mark)), out=tmp_path / "run"))
    return spec, mark


def torchspec_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMP_NUM_THREADS": "1",
        "HOME": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model.safetensors for eval (saved from a built model: no data, nothing imported)."""
    folder = tmp_path_factory.mktemp("weights")
    spec = {"name": "consent", "input": [4], "layers": [{"type": "Linear", "out_features": 3}]}
    out = folder / "model.safetensors"
    torchspec.save_model(torchspec.build(spec, seed=0), torchspec.load_spec(spec), str(out))
    return out


def in_process(spec: Path, weights: Path, command: str, allow_code: bool, overrides: list[str]) -> str:
    """The SpecError text of train or eval run in this process."""
    from torchspec.training.inference import evaluate_checkpoint

    with pytest.raises(SpecError) as info:
        if command == "train":
            torchspec.train(spec, overrides, quiet=True, allow_code=allow_code)
        else:
            evaluate_checkpoint(spec, str(weights), overrides, say=lambda _: None, allow_code=allow_code)
    return str(info.value)


def module_of(data: str) -> str:
    return data.split("target: '")[1].split(":")[0]


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[None]:
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        if name.startswith(("evil", "my_squares")):
            del sys.modules[name]


@pytest.mark.usefixtures("on_path")
@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("data", HOSTILE)
def test_without_allow_code_nothing_is_imported_or_run(
    tmp_path: Path, weights: Path, data: str, command: str
) -> None:
    spec, mark = setup(tmp_path, data)
    text = in_process(spec, weights, command, False, [])
    assert not mark.exists() and "evilmod" not in sys.modules and "evilpkg" not in sys.modules
    assert text.startswith(f"{spec}:6:") and f"would import module '{module_of(data)}'" in text
    assert "--allow-code" in text
    # from --set: refused too, and the error names the --set argument, not the file's line
    spec, mark = setup(tmp_path, "random")
    override = f"train.data={data.replace('MARK', str(mark))}"
    text = in_process(spec, weights, command, False, [override])
    assert not mark.exists() and text.startswith(f"--set {shown_argument(override)}: error:")


@pytest.mark.parametrize("data", [HOSTILE[0], HOSTILE[5]])
@pytest.mark.parametrize("fmt", [[], ["--format", "json"]])
def test_the_command_line_refuses_without_the_flag(
    tmp_path: Path, weights: Path, data: str, fmt: list[str]
) -> None:
    spec, mark = setup(tmp_path, data)
    command = ["eval", str(spec), "--checkpoint", str(weights), *fmt] if fmt else ["train", str(spec)]
    result = torchspec_cli(tmp_path, *command)
    assert result.returncode == 1 and not mark.exists(), result.stderr
    assert f"would import module '{module_of(data)}'" in result.stderr and "--allow-code" in result.stderr
    assert "Traceback" not in result.stderr and "importing" not in result.stderr


@pytest.mark.usefixtures("on_path")
@pytest.mark.parametrize(
    "grant",
    ["train.allow_code=true", "allow_code=true", "train.data.allow_code=true", "train.data.allow_code=1"],
)
def test_a_spec_or_set_cannot_grant_consent(tmp_path: Path, weights: Path, grant: str) -> None:
    spec, mark = setup(tmp_path, HOSTILE[5])
    with pytest.raises(SpecError):
        torchspec.train(spec, [grant], quiet=True)
    assert not mark.exists() and "evilmod" not in sys.modules
    spec.write_text(spec.read_text().replace("  epochs: 1\n", "  epochs: 1\n  allow_code: true\n"))
    with pytest.raises(SpecError, match="allow_code"):
        torchspec.train(spec, quiet=True)
    assert not mark.exists() and "evilmod" not in sys.modules


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("data", HOSTILE[:5])
def test_with_allow_code_a_non_dataset_is_refused_before_it_is_called(
    tmp_path: Path, weights: Path, data: str, command: str, capfd: pytest.CaptureFixture[str]
) -> None:
    spec, mark = setup(tmp_path, data)
    text = in_process(spec, weights, command, True, [])
    assert not mark.exists(), "a non-Dataset target was called"
    assert "not a torch.utils.data.Dataset subclass; it was not called" in text
    err = capfd.readouterr().err
    assert f"importing {module_of(data)} (from {spec}:6) because --allow-code was given" in err


@pytest.mark.parametrize("fmt", [[], ["--format", "json"]])
def test_the_command_line_names_the_module_before_importing(
    tmp_path: Path, weights: Path, fmt: list[str]
) -> None:
    spec, mark = setup(tmp_path, HOSTILE[0])
    command = ["eval", str(spec), "--checkpoint", str(weights), *fmt] if fmt else ["train", str(spec)]
    result = torchspec_cli(tmp_path, *command, "--allow-code")
    assert result.returncode == 1 and not mark.exists(), result.stderr
    assert f"importing os (from {spec}:6) because --allow-code was given" in result.stderr
    assert "not a torch.utils.data.Dataset subclass" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" or not fmt


GOOD = """\
import torch
from torch.utils.data import Dataset


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((4,), float(i % 3)), i % 3
"""


def test_a_real_dataset_module_works_with_allow_code(tmp_path: Path) -> None:
    (tmp_path / "my_squares.py").write_text(GOOD)
    data = "{source: python, target: 'my_squares:Squares', args: {n: 24}}"
    spec, _ = setup(tmp_path, data)
    result = torchspec_cli(tmp_path, "train", str(spec), "--allow-code", "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"importing my_squares (from {spec}:6) because --allow-code was given" in result.stderr
    ckpt = tmp_path / "run" / "best.ckpt"
    assert ckpt.is_file()
    result = torchspec_cli(
        tmp_path, "eval", str(spec), "--checkpoint", str(ckpt), "--format", "json", "--allow-code"
    )
    assert result.returncode == 0, result.stderr
    assert "importing my_squares" in result.stderr
    assert json.loads(result.stdout)["samples"] > 0
    # the Python API: the same consent, as an argument
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(SpecError, match="would import module 'my_squares'"):
            torchspec.train(spec, quiet=True, overwrite=True)  # refused: the CLI run's files stay
        assert ckpt.is_file()
        history = torchspec.train(spec, quiet=True, allow_code=True, overwrite=True)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_squares", None)
    assert len(history) == 1
