"""Data sources (optional ones skip without their extra), the epoch sampler, the first-batch check."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_spec

import torchspec
from torchspec.errors import SpecError
from torchspec.training.data import EpochSampler, load_data, synthetic_motion
from torchspec.training.resolve import resolve_spec

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


pytestmark = pytest.mark.usefixtures("one_thread")


def spec_text(input_shape: str, data: str, extra: str = "", out: int = 3) -> str:
    return f"""\
name: data_test
input: {input_shape}
layers:
  - Flatten
  - {{type: Linear, out_features: {out}}}
train:
  data: {data}
  batch_size: 8
  epochs: 1
  output_dir: OUT
{extra}"""


def datasets(path: Path, allow_code: bool = False) -> tuple[object, object]:
    spec, config = resolve_spec(path)
    data = load_data(
        config, spec.input, (3,), file=str(path), base_dir=str(path.parent), allow_code=allow_code
    )
    return data.train, data.val


# -- synthetic-motion --------------------------------------------------------------------------------
def test_synthetic_motion_is_deterministic_fast_and_labelled_by_direction() -> None:
    start = time.perf_counter()
    x, y = synthetic_motion((1, 8, 24, 24), 2048, classes=4, noise=0.0, seed=1)
    assert time.perf_counter() - start < 5
    assert x.shape == (2048, 1, 8, 24, 24) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(y.tolist()) == {0, 1, 2, 3}
    again = synthetic_motion((1, 8, 24, 24), 2048, classes=4, noise=0.0, seed=1)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    assert not torch.equal(x, synthetic_motion((1, 8, 24, 24), 2048, classes=4, noise=0.0, seed=2)[0])
    # the square's centre moves along the labelled direction: class k at angle 2*pi*k/4
    rows, cols = torch.arange(24.0), torch.arange(24.0)
    mass = x[:, 0].sum(dim=(2, 3))  # (N, T)
    cy = (x[:, 0].sum(dim=3) * rows).sum(dim=2) / mass
    cx = (x[:, 0].sum(dim=2) * cols).sum(dim=2) / mass
    dy, dx = cy[:, -1] - cy[:, 0], cx[:, -1] - cx[:, 0]
    predicted = torch.round(torch.atan2(dy, dx) / (torch.pi / 2)).long() % 4
    assert (predicted == y).float().mean() > 0.99


def test_synthetic_motion_single_frames_do_not_tell_the_direction() -> None:
    x, y = synthetic_motion((1, 8, 16, 16), 4000, classes=4, noise=0.0, seed=0)
    # the average first frame (where squares start) of each class: a position prior, but every
    # class covers most of the frame, so one frame alone is ambiguous
    for k in range(4):
        coverage = (x[y == k, 0, 0].sum(dim=0) > 0).float().mean()
        assert coverage > 0.5


def test_synthetic_motion_eight_classes_and_channels() -> None:
    x, y = synthetic_motion((3, 6, 20, 20), 256, classes=8, seed=0)
    assert x.shape == (256, 3, 6, 20, 20) and int(y.max()) == 7


def test_synthetic_motion_needs_a_clip_input(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"synthetic-motion makes clips \(C, T, H, W\)"):
        datasets(write_spec(tmp_path, spec_text("[4]", "synthetic-motion")))


# -- random, tensors, python, digits, torchvision ------------------------------------------------------
def test_random_source_classification_and_regression(tmp_path: Path) -> None:
    train, val = datasets(
        write_spec(tmp_path, spec_text("[2, 5]", "{source: random, samples: 50, classes: 3}"))
    )
    assert len(train) == 40 and len(val) == 10  # type: ignore[arg-type]
    x, y = train[0]  # type: ignore[index]
    assert x.shape == (2, 5) and y.dtype == torch.int64
    history = torchspec.train(
        write_spec(tmp_path, spec_text("[4]", "{source: random, task: regression}", "  loss: MSELoss\n")),
        quiet=True,
    )
    assert history[0]["train_accuracy"] is None and history[0]["val_accuracy"] is None
    csv_row = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1].split(",")
    assert csv_row[4] == "" and csv_row[6] == ""  # accuracy empty for regression


def test_tensors_npz_npy_memmap_and_pt(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 4)).astype(np.float32), rng.integers(0, 3, 30)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    torch.save({"inputs": torch.from_numpy(x), "labels": torch.from_numpy(y)}, tmp_path / "d.pt")
    for data in (
        "{source: tensors, inputs: d.npz}",  # relative to the spec's folder
        "{source: tensors, inputs: x.npy, targets: y.npy}",
        "{source: tensors, inputs: d.pt, inputs_key: inputs, targets_key: labels}",
    ):
        train, val = datasets(write_spec(tmp_path, spec_text("[4]", data)))
        assert len(train) + len(val) == 30  # type: ignore[arg-type]
        xs, _ = train[0]  # type: ignore[index]
        assert xs.shape == (4,) and xs.dtype == torch.float32
    train, _ = datasets(
        write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: x.npy, targets: y.npy}"))
    )
    assert isinstance(train.dataset.inputs, np.memmap)  # type: ignore[attr-defined]


def test_tensors_errors_are_clear(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 4)), labels=np.zeros(4))
    with pytest.raises(SpecError, match=r"train\.data \(tensors\): .*has no array 'y' \(it has: x, labels\)"):
        datasets(write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz}")))
    with pytest.raises(SpecError, match="does not exist"):
        datasets(write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: missing.npz}")))


def test_python_dataset_is_imported_and_announced(tmp_path: Path) -> None:
    (tmp_path / "my_data_mod.py").write_text(
        "import torch\n"
        "class Squares(torch.utils.data.Dataset):\n"
        "    def __init__(self, n):\n        self.n = n\n"
        "    def __len__(self):\n        return self.n\n"
        "    def __getitem__(self, i):\n        return torch.full((4,), float(i)), i % 3\n"
    )
    spec = write_spec(
        tmp_path, spec_text("[4]", "{source: python, target: 'my_data_mod:Squares', args: {n: 20}}")
    )
    repo = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-m", "torchspec", "train", str(spec), "--allow-code"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{repo}", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "importing my_data_mod (from " in result.stderr
    with pytest.raises(SpecError, match="no module named 'no_such_mod'"):
        path = write_spec(tmp_path, spec_text("[4]", "{source: python, target: 'no_such_mod:X'}"))
        datasets(path, allow_code=True)


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn (torchspec[digits]) not installed")
def test_digits_source() -> None:
    spec = Path(__file__).parent.parent / "specs" / "digits_cnn.yaml"
    train, val = datasets(spec)
    assert len(train) + len(val) == 1797  # type: ignore[arg-type]
    x, y = train[0]  # type: ignore[index]
    assert x.shape == (1, 8, 8) and float(x.min()) >= 0 and float(x.max()) <= 1 and 0 <= int(y) <= 9


def test_digits_without_sklearn_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if not installed
    with pytest.raises(SpecError, match=r"pip install 'torchspec\[digits\]'"):
        datasets(write_spec(tmp_path, spec_text("[1, 8, 8]", "digits")))


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision (torchspec[vision]) not installed")
def test_torchvision_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=i * 40).save(tmp_path / "images" / label / f"{i}.png")
    data = (
        "{source: torchvision, name: ImageFolder, root: "
        + str(tmp_path / "images")
        + ", transform: [Grayscale, ToTensor]}"
    )
    train, val = datasets(write_spec(tmp_path, spec_text("[1, 8, 8]", data)))
    assert len(train) + len(val) == 6  # type: ignore[arg-type]


def test_torchvision_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    with pytest.raises(SpecError, match=r"pip install 'torchspec\[vision\]'"):
        datasets(write_spec(tmp_path, spec_text("[1, 28, 28]", "{source: torchvision, name: MNIST}")))


# -- loaders -------------------------------------------------------------------------------------------
def test_epoch_sampler_order_depends_only_on_seed_and_epoch() -> None:
    a, b = EpochSampler(100, True, 7), EpochSampler(100, True, 7)
    b.set_epoch(2)
    b_order = list(b)
    a.set_epoch(2, start=24)
    assert list(a) == b_order[24:] and len(a) == 76
    assert a.order(2) != a.order(3) and sorted(a.order(3)) == list(range(100))
    assert list(EpochSampler(5, False, 7)) == [0, 1, 2, 3, 4]


def test_first_batch_of_the_wrong_shape_names_both_shapes(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((16, 5), np.float32), y=np.zeros(16, np.int64))
    # the data has 5 features per sample; the spec says 4 (and Flatten + Linear would accept it)
    path = write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz}"))
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "spec.yaml:2:8: error: the first batch from train.data (tensors) has samples of shape [5]" in text
    assert "but the spec's input is [4]" in text


def test_more_classes_than_outputs_is_an_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, spec_text("[4]", "{source: random, classes: 5}"))
    with pytest.raises(SpecError, match="the data has 5 classes but the model outputs 3 values"):
        torchspec.train(path, quiet=True)


# -- targets vs. the loss ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "found"),
    [
        ("MSELoss", "MSELoss needs float targets of the model's output shape [3]"),
        ("BCEWithLogitsLoss", "BCEWithLogitsLoss needs float targets of the model's output shape [3]"),
    ],
)
def test_regression_loss_with_class_labels_is_located(tmp_path: Path, loss: str, found: str) -> None:
    # labels from a file: found at the first batch (a source that says it gives labels is refused
    # earlier, at check time: tests/test_run_checks.py)
    np.savez(tmp_path / "d.npz", x=np.zeros((64, 4), np.float32), y=np.arange(64) % 3)
    path = write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz}", f"  loss: {loss}\n"))
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "spec.yaml:11:9: error:" in text and found in text
    assert "class labels" in text and "Traceback" not in text


def test_labels_out_of_range_anywhere_in_memory_are_located(tmp_path: Path) -> None:
    y = np.zeros(64, np.int64)
    y[-1] = 7  # far from the first batch
    np.savez(tmp_path / "d.npz", x=np.zeros((64, 4), np.float32), y=y)
    path = write_spec(
        tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz, val_fraction: 0.0}", "  loss: NLLLoss\n")
    )
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "spec.yaml:11:9: error:" in text
    assert "labels in [0, 7]" in text and "NLLLoss needs class labels in [0, 3)" in text


def test_labels_out_of_range_in_the_first_batch_of_a_python_dataset(tmp_path: Path) -> None:
    (tmp_path / "negdata.py").write_text(
        "import torch\n"
        "class Neg(torch.utils.data.Dataset):\n"
        "    def __len__(self):\n        return 16\n"
        "    def __getitem__(self, i):\n        return torch.zeros(4), torch.tensor(-3)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        path = write_spec(tmp_path, spec_text("[4]", "{source: python, target: 'negdata:Neg'}"))
        with pytest.raises(SpecError) as info:
            torchspec.train(path, quiet=True, allow_code=True)
    finally:
        sys.path.remove(str(tmp_path))
    text = str(info.value)
    assert "CrossEntropyLoss needs class labels in [0, 3)" in text and "[-3, -3]" in text


def test_float_targets_with_cross_entropy_are_located(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((32, 4), np.float32), y=np.zeros(32, np.float32))
    path = write_spec(
        tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz}", "  loss: CrossEntropyLoss\n")
    )
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "spec.yaml:11:9: error:" in text
    assert "float targets of shape []" in text and "integer class labels" in text


# -- zero training steps ---------------------------------------------------------------------------
def test_one_sample_keeps_it_for_training_not_validation(tmp_path: Path) -> None:
    path = write_spec(tmp_path, spec_text("[4]", "{source: random, samples: 2}"))
    train, val = datasets(path)
    assert len(train) == 1 and val is not None and len(val) == 1  # type: ignore[arg-type]
    path = write_spec(tmp_path, spec_text("[4]", "{source: random, samples: 1}"))
    train, val = datasets(path)
    assert len(train) == 1 and val is None  # type: ignore[arg-type]


def test_zero_training_steps_is_a_located_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    path = write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: d.npz}"))
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "spec.yaml:7:9: error: no training steps" in text and "0 train / 0 val samples" in text
    path = write_spec(
        tmp_path, spec_text("[4]", "{source: random, samples: 4}", "  drop_last: true\n"), name="dl"
    )
    with pytest.raises(SpecError) as info:
        torchspec.train(path, quiet=True)
    text = str(info.value)
    assert "dl.yaml:11:14: error: no training steps" in text
    assert "3 train / 1 val samples" in text and "batch_size 8" in text and "drop_last" in text


def test_tensors_of_strings_are_a_clear_error(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([["a", "b", "c", "d"]] * 8))
    np.save(tmp_path / "y.npy", np.zeros(8, np.int64))
    path = write_spec(tmp_path, spec_text("[4]", "{source: tensors, inputs: x.npy, targets: y.npy}"))
    with pytest.raises(SpecError, match=r"train.data \(tensors\): inputs file .*x.npy holds strings \(<U1\)"):
        datasets(path)
