"""`torchspec export --to onnx`: onnxruntime on the written file agrees with the torch module it
came from (the oracle: `torchspec.build(spec, seed=0)`, or `load_model` for a MODEL file) at two
batch sizes, 1 and 3 (the trace used 2), for float and int64 token inputs; a MODEL file's trained
weights are the file's initializers; torch's refusals are one clear line and leave no file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, process, write_spec
from export_specs import CONV, SKIP

import torchspec
from torchspec.builder import random_input
from torchspec.errors import SpecError
from torchspec.export import Exportable, export
from torchspec.fileio import TEMP_MARK
from torchspec.infer import infer_shapes

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _agrees(path: Path, model: torch.nn.Module, spec: str | Path, **load: object) -> None:
    """onnxruntime on ``path`` == ``model`` at batch 1 and 3, and the input's batch is ``batch``."""
    session = _session(path)
    (given,) = session.get_inputs()
    assert given.name == "input" and given.shape[0] == "batch", given
    report = infer_shapes(torchspec.load_spec(spec, **load))  # type: ignore[arg-type]
    for count in (1, 3):
        x = random_input(report, torch.Generator().manual_seed(count), count=count)
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == expected.shape and got.shape[0] == count
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# the sequential conv net (with BatchNorm) is the MODEL-file test's
@pytest.mark.parametrize("name", ["skip", "lstm_tokens", "transformer_tokens", "gpt_tiny"])
def test_onnxruntime_agrees_with_torch(name: str, tmp_path: Path) -> None:
    written = {"skip": SKIP}
    spec = write_spec(tmp_path, written[name]) if name in written else SPECS / f"{name}.yaml"
    out = tmp_path / "model.onnx"
    assert export(spec, "onnx", out) == [out]
    _agrees(out, torchspec.build(spec, seed=0).eval(), spec)
    assert [p.name for p in tmp_path.iterdir() if TEMP_MARK in p.name] == []


def test_resnet18_through_the_command(tmp_path: Path) -> None:
    out = tmp_path / "resnet18.onnx"
    sets = ["--variant", "resnet18", "--set", "input=[3,32,32]"]
    done = process("export", str(SPECS / "resnet.yaml"), "--to", "onnx", "-o", str(out), *sets)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the exporter's progress and warnings are not the user's
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"wrote {out} (ONNX opset ") and line.endswith(
        ", input float32 [batch, 3, 32, 32])"
    )
    model = torchspec.build(SPECS / "resnet.yaml", seed=0, variant="resnet18", overrides=["input=[3,32,32]"])
    _agrees(out, model.eval(), SPECS / "resnet.yaml", variant="resnet18", overrides=["input=[3,32,32]"])


def test_a_model_file_takes_its_trained_weights_along(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CONV)
    model = torchspec.build(spec, seed=3)
    with torch.no_grad():  # "trained": weights and BatchNorm statistics no initialisation gives
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    torchspec.save_model(model, torchspec.load_spec(spec), tmp_path / "model.safetensors")
    out = tmp_path / "trained.onnx"
    done = process("export", str(tmp_path / "model.safetensors"), "--to", "onnx", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (ONNX opset ")
    trained = torchspec.load_model(tmp_path / "model.safetensors")
    _agrees(out, trained, spec)
    # the weights are inside the one file: it runs alone in another folder, without external data
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "trained.onnx").write_bytes(out.read_bytes())
    _agrees(alone / "trained.onnx", trained, spec)
    graph = onnx.load(str(out)).graph
    assert not any(i.data_location == onnx.TensorProto.EXTERNAL for i in graph.initializer)
    # initializers keep the state's names; the head's are the trained tensors exactly (onnxscript's
    # optimizer folds BatchNorm into the conv before it, so conv.weight holds the folded weight)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for key in ("head.weight", "head.bias"):
        np.testing.assert_array_equal(inits[key], trained.state_dict()[key].numpy(), err_msg=key)
    # and the file is not the spec's fresh initialisation
    fresh = _session(out).run(None, {"input": np.ones((1, 3, 12, 12), np.float32)})[0]
    with torch.no_grad():
        assert not np.allclose(fresh, torchspec.build(spec, seed=0).eval()(torch.ones(1, 3, 12, 12)).numpy())


def test_an_op_onnx_cannot_translate_is_one_line_and_leaves_the_old_file(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "name: frac\ninput: [1, 8, 8]\nlayers:\n"
        "  - {type: FractionalMaxPool2d, kernel_size: 2, output_size: 4}\n  - Flatten\n",
    )
    out = tmp_path / "frac.onnx"
    out.write_bytes(b"the old file")
    done = cli("export", str(spec), "--to", "onnx", "-o", str(out))
    assert done.returncode == 1 and done.stdout == ""
    first, *hints = done.stderr.splitlines()
    assert first.startswith(f"{spec}: error: cannot export {spec} to ONNX: torch refused the model (")
    assert "fractional_max_pool2d" in first and "Traceback" not in done.stderr
    assert "  hint: --to exported-program exports it" in hints
    assert out.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frac.onnx", "spec.yaml"]


def test_weights_too_large_for_one_onnx_file_are_refused_before_tracing(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "name: big\ninput: [24000]\nlayers:\n  - {type: Linear, out_features: 24000}\n"
    )
    report = infer_shapes(torchspec.load_spec(spec))  # 576M parameters: 2.1 GiB, never built here
    from torchspec.export.onnx import write_onnx

    with pytest.raises(SpecError, match=r"its weights \(2\.15 GiB\) do not fit in one ONNX file"):
        write_onnx(Exportable(report, torch.nn.Identity(), None, str(spec)), tmp_path / "big.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_without_the_onnx_extra_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, CONV), tmp_path / "model.onnx"
    code = (
        "import sys; sys.modules['onnxscript'] = None; "  # `import onnxscript` now fails, as when absent
        f"sys.argv = ['torchspec', 'export', {str(spec)!r}, '--to', 'onnx', '-o', {str(out)!r}]; "
        "from torchspec.cli import entry; entry()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "torchspec export: error: --to onnx needs the onnx extra (onnxscript is not installed): "
        'pip install "torchspec[onnx]"\n'
    )
    assert not out.exists()


def test_without_the_onnx_extra_the_library_raises_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(
        ImportError, match=r'needs the onnx extra \(onnx is not installed\): pip install "torchspec\[onnx\]"'
    ):
        export(write_spec(tmp_path, CONV), "onnx", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
