"""Data files from strangers (train.data: tensors), the dtype rule, and where data errors point.

Every crafted file (hostile_files.FILES: truncated, bit-flipped, lying headers, devices, FIFOs,
pickles, ...) is refused with a located SpecError that names the file and says why, before any
unbounded read; every real-number dtype trains; errors about a source given by --set name the --set.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_spec
from hostile_files import FILES, make

import torchspec
from torchspec.errors import SpecError
from torchspec.training.data import load_data
from torchspec.training.overrides import shown_argument
from torchspec.training.resolve import resolve_spec

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = str(Path(__file__).resolve().parent.parent)


def spec_text(data: str, extra: str = "") -> str:
    return (
        "name: files\ninput: [4]\nlayers:\n  - {type: Linear, out_features: 3}\ntrain:\n"
        f"  data: {data}\n  batch_size: 4\n  epochs: 1\n  output_dir: OUT\n{extra}"
    )


def datasets(path: Path, overrides: list[str] | None = None) -> tuple[object, object]:
    spec, config = resolve_spec(path, overrides or [])
    data = load_data(config, spec.input, (3,), file=str(path), doc=spec.document, base_dir=str(path.parent))
    return data.train, data.val


def error_of(call: object) -> str:
    with pytest.raises(SpecError) as info:
        call()  # type: ignore[operator]
    return str(info.value)


# a .npz given as inputs is read for both arrays, so its cases run as inputs only
CASES = [(n, role) for n in sorted(FILES) if not n.startswith("fifo") for role in ("inputs", "targets")
         if role == "inputs" or not FILES[n][0].endswith(".npz")]  # fmt: skip


@pytest.mark.parametrize(("name", "role"), CASES)
def test_a_hostile_data_file_is_refused_naming_it_and_why(tmp_path: Path, name: str, role: str) -> None:
    path, words = make(tmp_path, name)
    np.save(tmp_path / "good.npy", np.zeros((10, 4), np.float32))
    np.save(tmp_path / "labels.npy", np.zeros(10, np.int64))
    if role == "inputs":
        data = f"{{source: tensors, inputs: {path.name}, targets: labels.npy}}"
        if path.suffix == ".npz":
            data = f"{{source: tensors, inputs: {path.name}}}"
    else:
        data = f"{{source: tensors, inputs: good.npy, targets: {path.name}}}"
    spec = write_spec(tmp_path, spec_text(data))
    text = error_of(lambda: datasets(spec))
    key = role if (role == "targets" or path.suffix != ".npz") else "inputs"
    line = 6
    assert text.startswith(f"{spec}:{line}:"), text  # at the key naming the file
    assert f"train.data (tensors): {key if role == 'targets' else 'inputs'}" in text or "has no" in text
    assert str(path) in text and words in text, text
    assert "likely succeed" not in text and "weights_only=False will" not in text
    assert "allow_pickle" not in text


@pytest.mark.parametrize("name", ["fifo", "fifo_pt"])
def test_a_fifo_is_never_opened(tmp_path: Path, name: str) -> None:
    path, words = make(tmp_path, name)
    np.save(tmp_path / "labels.npy", np.zeros(10, np.int64))
    spec = write_spec(tmp_path, spec_text(f"{{source: tensors, inputs: {path.name}, targets: labels.npy}}"))
    env = {"PYTHONPATH": REPO, "PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torchspec", "train", str(spec), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # opening the FIFO would block forever: the timeout fails the test
    )
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr


INPUT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
                "float16", "float32", "float64"]  # fmt: skip


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("ext", [".npy", ".pt"])
def test_every_real_input_dtype_is_converted_and_trains(tmp_path: Path, dtype: str, ext: str) -> None:
    values = np.arange(64).reshape(16, 4) % 7
    x = (values > 3) if dtype == "bool" else values.astype(dtype)
    if ext == ".npy":
        np.save(tmp_path / "x.npy", x)
    else:
        torch.save(torch.from_numpy(np.ascontiguousarray(x)), tmp_path / "x.pt")
    np.save(tmp_path / "y.npy", np.arange(16) % 3)
    spec = write_spec(tmp_path, spec_text(f"{{source: tensors, inputs: x{ext}, targets: y.npy}}"))
    train, _ = datasets(spec)
    sample, label = train.dataset[5]  # type: ignore[attr-defined]
    assert sample.dtype == torch.float32 and label.dtype == torch.int64
    expected = torch.from_numpy(x[5].astype(np.float32))
    if dtype == "uint8":
        expected = expected / 255  # images: uint8 is scaled to [0, 1]
    assert torch.equal(sample, expected)
    history = torchspec.train(spec, quiet=True)
    assert len(history) == 1


@pytest.mark.parametrize("dtype", [*INPUT_DTYPES[:9]])
@pytest.mark.parametrize("ext", [".npy", ".pt"])
def test_every_integer_label_dtype_becomes_int64(tmp_path: Path, dtype: str, ext: str) -> None:
    np.save(tmp_path / "x.npy", np.zeros((16, 4), np.float32))
    labels = (np.arange(16) % 2).astype(dtype)
    if ext == ".npy":
        np.save(tmp_path / "y.npy", labels)
    else:
        torch.save(torch.from_numpy(labels), tmp_path / "y.pt")
    spec = write_spec(tmp_path, spec_text(f"{{source: tensors, inputs: x.npy, targets: y{ext}}}"))
    train, _ = datasets(spec)
    label = train.dataset[3][1]  # type: ignore[attr-defined]
    assert label.dtype == torch.int64 and int(label) == 1
    assert len(torchspec.train(spec, quiet=True)) == 1


def test_a_uint64_label_too_big_for_int64_in_a_pt_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 4), np.float32))
    torch.save(torch.tensor([0, 1, 2**63 + 5, 1], dtype=torch.uint64), tmp_path / "y.pt")
    spec = write_spec(tmp_path, spec_text("{source: tensors, inputs: x.npy, targets: y.pt}"))
    text = error_of(lambda: datasets(spec))
    assert "uint64 label of 9223372036854775813" in text and text.startswith(f"{spec}:6:")


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (np.array([0, 1, 2**63, 1] * 4, np.uint64), "uint64 label of 9223372036854775808"),
        (np.zeros(16, np.complex128), "complex numbers"),
        (np.array(["a"] * 16), "strings"),
    ],
)
def test_labels_that_cannot_be_int64_are_refused(tmp_path: Path, labels: np.ndarray, words: str) -> None:
    np.save(tmp_path / "x.npy", np.zeros((16, 4), np.float32))
    np.save(tmp_path / "y.npy", labels)
    spec = write_spec(tmp_path, spec_text("{source: tensors, inputs: x.npy, targets: y.npy}"))
    text = error_of(lambda: torchspec.train(spec, quiet=True))
    assert words in text and "Traceback" not in text and f"{spec}:6:" in text


MISSING = "{source: tensors, inputs: missing.npz}"


# -- where data errors point: the file's line, or the --set that gave the value --------------------
@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ([], "{spec}:6:"),
        ([f"train.data={MISSING}"], f"--set train.data={MISSING}:"),
        (["train.data.inputs=missing.npz"], "--set train.data.inputs=missing.npz:"),
        (["train.data=random", f"train.data={MISSING}"], f"--set train.data={MISSING}:"),
    ],
)
def test_data_errors_point_at_the_set_that_gave_the_value(
    tmp_path: Path, overrides: list[str], where: str
) -> None:
    spec = write_spec(tmp_path, spec_text("{source: tensors, inputs: missing.npz}"))
    for call in (lambda: datasets(spec, overrides), lambda: torchspec.train(spec, overrides, quiet=True)):
        text = error_of(call)
        assert text.startswith(where.replace("{spec}", str(spec))), text
        assert "missing.npz does not exist" in text


def test_a_corrupt_file_from_set_names_the_set_not_the_file_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_text("random"))
    path, words = make(tmp_path, "npz_bit_flip")
    arg = f"train.data={{source: tensors, inputs: {path}}}"
    text = error_of(lambda: torchspec.train(spec, [arg], quiet=True))
    assert text.startswith(f"--set {shown_argument(arg)}: error:") and words in text


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision not installed")
@pytest.mark.parametrize(
    "name", ["utils", "wrap_dataset_for_transforms_v2", "folder", "VisionDataset2", "os"]
)
def test_torchvision_name_reaches_only_data_set_classes(tmp_path: Path, name: str) -> None:
    spec = write_spec(tmp_path, spec_text(f"{{source: torchvision, name: {name}, root: {tmp_path}}}"))
    text = error_of(lambda: datasets(spec))
    assert f"torchvision.datasets has no data set '{name}'" in text and text.startswith(f"{spec}:6:")
