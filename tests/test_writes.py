"""Every file torchspec writes goes to a unique temporary name and is renamed into place: a symlink
planted at the final name or at any fixed temporary name is never written through (the victim it
points to stays byte-identical). A write that fails (a real full tmpfs, injected ENOSPC, a
read-only folder, a directory in the way) stops with exit 1 naming the file and the reason, keeps
the last good checkpoint and leaves no partial file; what can be checked before any data or model
is loaded is checked then."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_CNN, write_spec

import torchspec
from torchspec import fileio
from torchspec.cli import main
from torchspec.errors import SpecError
from torchspec.fileio import TEMP_MARK, WriteError
from torchspec.training.checkpoint import load_checkpoint
from torchspec.training.rundir import LOCK_NAME, RUN_FILES

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = TINY_CNN
# A data source that fails when loaded: an error about the folder proves it came first.
UNLOADABLE = SPEC.replace(
    "{source: random, samples: 48, classes: 5, val_fraction: 0.25}", "{source: tensors, inputs: missing.npy}"
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FIXED_TEMPS = ("{}.tmp", ".{}.tmp", "{}~", "{}.part", "{}.new", ".{}.swp", "{}.temp")


def _train(spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torchspec", "train", str(spec), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


def _temps(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if TEMP_MARK in n or n.endswith(".tmp")]


def _plant(folder: Path, victims: Path, name: str) -> dict[Path, bytes]:
    """Links at ``name`` and at its plausible fixed temporary names, each to its own victim file."""
    folder.mkdir(exist_ok=True)
    victims.mkdir(exist_ok=True)
    planted = {}
    for pattern in ("{}", *FIXED_TEMPS):
        link = folder / pattern.format(name)
        victim = victims / (pattern.format(name).replace("/", "_") + ".victim")
        victim.write_bytes(b"the user's own file " + link.name.encode())
        link.symlink_to(victim)
        planted[victim] = victim.read_bytes()
    return planted


def _assert_untouched(planted: dict[Path, bytes]) -> None:
    for victim, data in planted.items():
        assert victim.read_bytes() == data, f"{victim} was written through a link"


def _assert_regular(path: Path) -> None:
    assert path.exists() and not path.is_symlink() and path.is_file(), path


# -- never through a link ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [*RUN_FILES, LOCK_NAME])
def test_train_never_writes_through_a_link(tmp_path: Path, name: str) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    planted = _plant(out, tmp_path / "victims", name)
    torchspec.train(spec, quiet=True)  # links are not a run's files: a fresh run starts
    _assert_untouched(planted)
    for other in RUN_FILES:
        _assert_regular(out / other)
    assert not (out / LOCK_NAME).is_symlink()


def test_a_real_train_process_with_every_link_planted_at_once(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    planted: dict[Path, bytes] = {}
    for name in (*RUN_FILES, LOCK_NAME):
        planted |= _plant(out, tmp_path / "victims", name)
    done = _train(spec, "--quiet")
    assert done.returncode == 0, done.stderr
    _assert_untouched(planted)
    for name in RUN_FILES:
        _assert_regular(out / name)
    assert torchspec.load_model(out / "model.safetensors") is not None


@pytest.mark.parametrize("command", ["build", "schema"])
def test_build_and_schema_output_never_through_a_link(tmp_path: Path, command: str) -> None:
    name = "model.safetensors" if command == "build" else "schema.json"
    planted = _plant(tmp_path / "out", tmp_path / "victims", name)
    target = tmp_path / "out" / name
    argv = ["build", str(write_spec(tmp_path, SPEC)), "-o", str(target)] if command == "build" else []
    argv = argv or ["schema", "-o", str(target)]
    assert main(argv) == 0
    _assert_untouched(planted)
    _assert_regular(target)
    assert not _temps(tmp_path / "out") or all(
        (tmp_path / "out" / t).is_symlink() for t in _temps(tmp_path / "out")
    )


# -- write failures during a run ---------------------------------------------------------------


def _full(handle: Any) -> Any:
    class Full:
        """A file on a disk that fills up after 100 bytes."""

        def __init__(self) -> None:
            self.written = 0

        def write(self, data: Any) -> int:
            if self.written + len(data) > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return int(handle.write(data))

        def __getattr__(self, attr: str) -> Any:
            return getattr(handle, attr)

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            handle.close()

    return Full()


def _inject_full_disk(monkeypatch: pytest.MonkeyPatch, name: str, after: int) -> None:
    """The write of ``name`` number ``after + 1`` (and later) runs out of space."""
    count = [0]
    real_open = open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if os.path.basename(str(file)).startswith(f".{name}{TEMP_MARK}."):
            count[0] += 1
            if count[0] > after:
                return _full(handle)
        return handle

    monkeypatch.setattr(fileio, "open", fake_open, raising=False)
    import safetensors.torch

    real_save = safetensors.torch.save_file

    def fake_save(state: Any, path: str, metadata: Any = None) -> None:  # the Rust writer's own error
        Path(path).write_bytes(b"half a header")
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    if name == "model.safetensors":
        monkeypatch.setattr(safetensors.torch, "save_file", fake_save)
    else:
        monkeypatch.setattr(safetensors.torch, "save_file", real_save)


# (file, how many of its writes succeed first, the checkpoint the error must name as kept)
FAILURES = [
    ("spec.yaml", 0, None),
    ("metrics.csv", 1, "last.ckpt (step 3)"),  # epoch 2's metrics: epoch 1's checkpoint is kept
    ("last.ckpt", 1, "last.ckpt (step 3)"),
    ("best.ckpt", 0, "last.ckpt (step 3)"),
    ("model.safetensors", 0, "last.ckpt (step 6)"),
]


@pytest.mark.parametrize(("name", "after", "kept"), FAILURES)
def test_a_full_disk_stops_the_run_naming_the_file_and_the_checkpoint_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, after: int, kept: str | None
) -> None:
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "run"
    _inject_full_disk(monkeypatch, name, after)
    with pytest.raises(WriteError) as err:
        torchspec.train(spec, quiet=True)
    text = str(err.value)
    assert f"{out / name}: error: cannot write {out / name}: disk full" in text
    assert "training stopped" in text and "free some space" in text
    if kept is None:
        assert "no checkpoint of this run was written yet" in text
    else:
        assert f"the last good checkpoint is kept: {out}/{kept}; --resume auto continues from it" in text
        step = int(kept.split("step ")[1].rstrip(")"))
        assert load_checkpoint(str(out / "last.ckpt"))["step"] == step  # intact, loadable
    assert _temps(out) == []  # no partial file left
    assert not (out / LOCK_NAME).exists()  # the lock went with the run


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1.6 MB tmpfs: room for one checkpoint of the big model below, not for two."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1600k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (needs root and mount rights): {done.stderr.decode().strip()}"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


BIG = """\
name: big
input: [1, 64, 64]
layers:
  - Flatten
  - {type: Linear, out_features: 64}
train:
  data: {source: random, samples: 40, classes: 64, val_fraction: 0.2}
  batch_size: 16
  epochs: 2
  optimizer: {type: SGD, lr: 0.01}
  output_dir: OUT
"""


def test_a_real_full_disk_mid_run(tmp_path: Path, small_tmpfs: Path) -> None:
    """262,208 float32 parameters: last.ckpt (~1.05 MB) fits, best.ckpt beside it does not."""
    out = small_tmpfs / "run"
    spec = tmp_path / "big.yaml"
    spec.write_text(BIG.replace("OUT", str(out)))
    done = _train(spec, "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot write {out}/best.ckpt: disk full" in done.stderr
    assert f"the last good checkpoint is kept: {out}/last.ckpt (step 2)" in done.stderr
    assert load_checkpoint(str(out / "last.ckpt"))["epoch"] == 1
    assert _temps(out) == [] and not (out / LOCK_NAME).exists()


# -- refused before any data or model is loaded ------------------------------------------------


def _dir_in_the_way(name: str) -> Any:
    def make(out: Path) -> str:
        (out / name).mkdir(parents=True)
        (out / name / "keep").write_text("x")
        return f"{out / name}: error: {out / name} is a directory, where the run writes its {name}"

    return make


def _file_as_output_dir(out: Path) -> str:
    out.write_text("a file")
    return f"output_dir {out} is a file, not a folder"


def _file_above_output_dir(out: Path) -> str:
    out.write_text("a file")
    return f"cannot create output_dir {out / 'below'}: a file is in the way"


def _lock_is_a_directory(out: Path) -> str:
    (out / LOCK_NAME).mkdir(parents=True)
    return f"cannot create the run's lock file {out / LOCK_NAME}: is a directory"


CASES = {
    **{f"{name} is a directory": _dir_in_the_way(name) for name in RUN_FILES},
    "output_dir is a file": _file_as_output_dir,
    "a file above output_dir": _file_above_output_dir,
    "the lock is a directory": _lock_is_a_directory,
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unwritable_output_dir_is_refused_before_any_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    out = tmp_path / "run"
    expected = CASES[case](out)
    target = out / "below" if case == "a file above output_dir" else out
    spec = tmp_path / "spec.yaml"
    spec.write_text(UNLOADABLE.replace("OUT", str(target)))
    assert main(["train", str(spec)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "missing.npy" not in err  # the data was never loaded


def test_a_read_only_output_dir_is_refused_before_any_data(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
    try:
        spec = tmp_path / "spec.yaml"
        spec.write_text(UNLOADABLE.replace("OUT", str(folder)))
        run = _train(spec)
        assert run.returncode == 1, run.stderr
        assert f"{folder}: error: cannot write files in {folder}: read-only file system" in run.stderr
        assert "missing.npy" not in run.stderr and "Traceback" not in run.stderr
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_the_probe_leaves_nothing(tmp_path: Path) -> None:
    fileio.probe_writable(tmp_path)
    assert os.listdir(tmp_path) == []


def test_build_output_that_is_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "m.safetensors"
    target.mkdir()
    assert main(["build", str(write_spec(tmp_path, SPEC)), "-o", str(target)]) == 1
    assert "is a directory" in capsys.readouterr().err
    shutil.rmtree(target)


def test_spec_error_is_still_a_spec_error() -> None:
    assert issubclass(WriteError, SpecError)
