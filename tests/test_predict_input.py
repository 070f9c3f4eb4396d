"""predict's input: hostile files refused, the dtype rule, NaN/inf refused, and --batch streaming.

The model is a real model.safetensors; every crafted file of hostile_files.FILES (.npy/.pt) is
refused naming the file and why; outputs with any --batch equal the one-batch outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_files import FILES, make

import torchspec
from torchspec.errors import SpecError
from torchspec.training.inference import predict

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = str(Path(__file__).resolve().parent.parent)
SPEC = {"name": "p", "input": [4], "layers": [{"type": "Linear", "out_features": 5}]}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    torchspec.save_model(torchspec.build(SPEC, seed=0), torchspec.load_spec(SPEC), str(path))
    return path


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": REPO, "PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torchspec", "predict", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "name", sorted(n for n, (file, _, _) in FILES.items() if not file.endswith(".npz") and "fifo" not in n)
)
def test_a_hostile_input_file_is_refused_naming_it_and_why(tmp_path: Path, model: Path, name: str) -> None:
    path, words = make(tmp_path, name)
    with pytest.raises(SpecError) as info:
        predict(str(model), str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: error:") and words in text, text
    assert "likely succeed" not in text and "allow_pickle" not in text


@pytest.mark.parametrize("name", ["fifo", "fifo_pt", "npy_header_52GB", "link_dev_zero"])
def test_a_hostile_input_fails_fast_from_the_command_line(tmp_path: Path, model: Path, name: str) -> None:
    path, words = make(tmp_path, name)
    for fmt in ("table", "json"):
        result = cli(str(model), str(path), "--format", fmt, timeout=120)
        assert result.returncode == 1 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8", "uint16", "bool", "float16", "float64"])
def test_inputs_follow_the_data_dtype_rule(tmp_path: Path, model: Path, dtype: str) -> None:
    values = np.arange(24).reshape(6, 4) % 9
    x = (values > 4) if dtype == "bool" else values.astype(dtype)
    np.save(tmp_path / "x.npy", x)
    expected = x.astype(np.float32) / (255 if dtype == "uint8" else 1)
    np.save(tmp_path / "ref.npy", expected)
    got = predict(str(model), str(tmp_path / "x.npy")).outputs
    ref = predict(str(model), str(tmp_path / "ref.npy")).outputs
    assert torch.equal(got, ref)
    torch.save(torch.from_numpy(np.ascontiguousarray(x)), tmp_path / "x.pt")
    assert torch.equal(predict(str(model), str(tmp_path / "x.pt")).outputs, ref)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("index", [0, 7, 299])
@pytest.mark.parametrize("ext", [".npy", ".pt"])
def test_non_finite_inputs_are_refused_naming_the_sample(
    tmp_path: Path, model: Path, bad: float, index: int, ext: str
) -> None:
    x = np.ones((300, 4), np.float32)
    x[index, 2] = bad
    path = tmp_path / f"x{ext}"
    np.save(path, x) if ext == ".npy" else torch.save(torch.from_numpy(x), path)
    for batch in (1, 64, 1000):
        with pytest.raises(SpecError) as info:
            predict(str(model), str(path), batch=batch)
        assert f"input sample {index} of {path} holds NaN or infinite values" in str(info.value)
    if index == 7:  # the command line too (a subprocess per file kind and value)
        result = cli(str(model), str(path), "--format", "json")
        assert result.returncode == 1 and f"input sample {index}" in result.stderr and result.stdout == ""


def test_complex_inputs_are_refused_not_cast(tmp_path: Path, model: Path) -> None:
    for value in (torch.ones(3, 4, dtype=torch.complex64), torch.ones(4, dtype=torch.complex128)):
        torch.save(value, tmp_path / "c.pt")
        with pytest.raises(SpecError, match="complex numbers"):
            predict(str(model), str(tmp_path / "c.pt"))


def test_batches_give_the_outputs_of_one_batch(tmp_path: Path, model: Path) -> None:
    x = np.random.default_rng(0).standard_normal((1000, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        whole = torchspec.load_model(str(model))(torch.from_numpy(x))
    for batch in (1, 7, 256, 999, 1000, 5000):
        out = predict(str(model), str(tmp_path / "x.npy"), batch=batch).outputs
        assert out.shape == (1000, 5)
        torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)
    one = cli(str(model), str(tmp_path / "x.npy"), "--format", "json", "--batch", "1")
    many = cli(str(model), str(tmp_path / "x.npy"), "--format", "json")
    assert one.returncode == 0 and many.returncode == 0
    a, b = json.loads(one.stdout), json.loads(many.stdout)
    assert [r["index"] for r in a] == list(range(1000)) and [[t["class"] for t in r["top"]] for r in a] == [
        [t["class"] for t in r["top"]] for r in b
    ]
    for bad in ("0", "-3", "x"):
        result = cli(str(model), str(tmp_path / "x.npy"), "--batch", bad)
        assert result.returncode == 2 and "--batch" in result.stderr


def test_a_big_input_is_run_in_bounded_memory(tmp_path: Path) -> None:
    # A wide model: one forward over all 4,000 samples would need 4,000 x 65,536 x 4 B = 1.05 GB of
    # activations; in batches of 64 it needs 17 MB.
    spec = {"name": "wide", "input": [4], "layers": [{"type": "Linear", "out_features": 65536},
            "ReLU", {"type": "Linear", "out_features": 3}]}  # fmt: skip
    path = tmp_path / "wide.safetensors"
    torchspec.save_model(torchspec.build(spec, seed=0), torchspec.load_spec(spec), str(path))
    np.save(tmp_path / "x.npy", np.ones((4_000, 4), np.float32))
    script = (
        "import resource, sys\n"
        "import torch, torchspec.training.inference\n"
        "from torchspec.cli import main\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "code = main(['predict', sys.argv[1], sys.argv[2], '--batch', '64', '--format', 'json'])\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write(f'GROWTH {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}\\n')\n"
        "sys.exit(code)\n"
    )
    env = {"PYTHONPATH": REPO, "PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)  # big blocks go back to the system when freed:
    # the peak RSS then measures what was alive at once, not what malloc kept after freeing it
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4_000
    growth_kb = int(result.stderr.split("GROWTH ")[1].split()[0])
    assert growth_kb * 1024 < 400_000_000, f"peak RSS grew by {growth_kb} kB"  # one batch needs 1.05 GB
