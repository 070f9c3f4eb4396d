"""`torchspec export --to exported-program`: `torch.export.load(FILE).module()` gives the torch
module's outputs at batch 1 and 3 (the trace used 2), a MODEL file's trained weights included; and
the command's errors (shared with --to onnx): one clear line, exit 1 (usage: 2), no file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import cli, process, write_spec
from export_specs import CONV, SKIP

import torchspec
from torchspec.builder import random_input
from torchspec.errors import SpecError
from torchspec.export import Exportable, export
from torchspec.infer import infer_shapes

pytestmark = pytest.mark.usefixtures("one_thread")
SPECS = Path(__file__).resolve().parent.parent / "specs"

# shapes that hold for one sample only: [N, 3] -> [1, 3]
BATCH_BOUND = """\
name: bound
input: [4]
layers:
  - {type: Linear, out_features: 3}
  - {type: Reshape, shape: [1, 3], include_batch: true}
"""


def _agrees(path: Path, model: torch.nn.Module, spec: Path) -> None:
    loaded = torch.export.load(str(path)).module()
    report = infer_shapes(torchspec.load_spec(spec))
    for count in (1, 3):
        x = random_input(report, torch.Generator().manual_seed(count), count=count)
        with torch.no_grad():
            got, expected = loaded(x), model(x)
        assert got.shape[0] == count
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["conv", "skip", "lstm_tokens", "gpt_tiny"])
def test_the_loaded_program_agrees_with_torch(name: str, tmp_path: Path) -> None:
    written = {"conv": CONV, "skip": SKIP}
    spec = write_spec(tmp_path, written[name]) if name in written else SPECS / f"{name}.yaml"
    out = tmp_path / "model.pt2"
    assert export(spec, "exported-program", out) == [out]
    _agrees(out, torchspec.build(spec, seed=0).eval(), spec)


def test_a_model_file_through_the_command(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CONV)
    weights, out = tmp_path / "model.safetensors", tmp_path / "model.pt2"
    built = process("build", str(spec), "-o", str(weights), "--seed", "7")
    assert built.returncode == 0, built.stderr
    done = process("export", str(weights), "--to", "exported-program", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"wrote {out} (ExportedProgram, ") and line.endswith(" kB)")
    trained = torchspec.load_model(weights)
    _agrees(out, trained, spec)
    x = torch.ones(2, 3, 12, 12)
    with torch.no_grad():  # the file's weights, not the spec's seed-0 initialisation
        assert not torch.allclose(
            torch.export.load(str(out)).module()(x), torchspec.build(spec, seed=0).eval()(x)
        )


def test_a_training_checkpoint_exports_its_weights(artefact_run: Path, tmp_path: Path) -> None:
    # a trained run (Linear, BatchNorm1d with its running statistics, Dropout): last.ckpt
    ckpt, out = artefact_run / "run" / "last.ckpt", tmp_path / "last.pt2"
    assert export(ckpt, "exported-program", out) == [out]
    trained = torchspec.load_model(ckpt)
    loaded = torch.export.load(str(out)).module()
    for count in (1, 3):
        x = torch.randn(count, 6, generator=torch.Generator().manual_seed(count))
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), trained(x), rtol=1e-5, atol=1e-5)


def test_a_link_at_the_output_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim, out = tmp_path / "victim.txt", tmp_path / "model.pt2"
    victim.write_text("keep me")
    out.symlink_to(victim)
    done = cli("export", str(write_spec(tmp_path, CONV)), "--to", "exported-program", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "keep me"
    assert not out.is_symlink() and out.stat().st_size > 1000


class _FixesTheBatch(torch.nn.Module):
    """A module torch specialises to the traced batch (2): what no spec's shapes could say."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(2, -1)


@pytest.mark.parametrize("to", ["onnx", "exported-program"])
def test_a_model_torch_refuses_leaves_the_old_file(to: str, tmp_path: Path) -> None:
    from torchspec.export.onnx import write_onnx
    from torchspec.export.program import write_program

    spec = write_spec(tmp_path, "name: flat\ninput: [3]\nlayers:\n  - Identity\n")
    item = Exportable(infer_shapes(torchspec.load_spec(spec)), _FixesTheBatch(), None, str(spec))
    out = tmp_path / ("model.onnx" if to == "onnx" else "model.pt2")
    out.write_bytes(b"old")
    with pytest.raises(SpecError) as caught:
        (write_onnx if to == "onnx" else write_program)(item, out)
    (problem,) = caught.value.problems
    assert problem.message.startswith(f"cannot export {spec} to ")
    assert "torch refused the model (UserError: Constraints violated (batch)!" in problem.message
    assert any(hint.startswith("the model works for some batch sizes only") for hint in problem.hints)
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == [out.name, "spec.yaml"]


@pytest.mark.parametrize("to, suffix", [("onnx", ".onnx"), ("exported-program", ".pt2")])
def test_shapes_that_depend_on_the_batch_are_refused_at_the_layer(
    to: str, suffix: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, BATCH_BOUND)
    done = cli("export", str(spec), "--to", to, "-o", str(tmp_path / f"m{suffix}"))
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"{spec}:5:5: error: Reshape (layers[1]): shape [1, 3] holds 3 elements")
    assert "  hint: the exported file takes any batch size, so every shape must hold for any batch" in lines
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


def test_spec_errors_are_located(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "name: typo\ninput: [4]\nlayers:\n  - {type: Linear, out_featurs: 3}\n")
    done = cli("export", str(spec), "--to", "exported-program", "-o", str(tmp_path / "m.pt2"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"{spec}:4:")
    assert "out_featurs" in done.stderr.splitlines()[0] and "Traceback" not in done.stderr
    missing = tmp_path / "nope.yaml"
    done = cli("export", str(missing), "--to", "exported-program", "-o", str(tmp_path / "m.pt2"))
    assert done.returncode == 1
    assert done.stderr == f"{missing}:1:1: error: cannot read the spec: No such file or directory\n"
    missing = tmp_path / "model.safetensors"
    done = cli("export", str(missing), "--to", "exported-program", "-o", str(tmp_path / "m.pt2"))
    assert done.returncode == 1 and done.stderr.startswith(f"{missing}: error: ")
    assert "does not exist" in done.stderr.splitlines()[0] and "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


def test_unwritable_outputs_are_one_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CONV)
    out = tmp_path / "no" / "such" / "m.pt2"
    done = cli("export", str(spec), "--to", "exported-program", "-o", str(out))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines()[0] == f"{out}: error: cannot write {out}: the folder does not exist"
    folder = tmp_path / "in_the_way.pt2"
    folder.mkdir()
    done = cli("export", str(spec), "--to", "exported-program", "-o", str(folder))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == f"{folder}: error: cannot write {folder}: a directory is in the way"
    assert folder.is_dir() and os.listdir(folder) == []
    assert sorted(os.listdir(tmp_path)) == ["in_the_way.pt2", "spec.yaml"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, CONV)
    done = process("export", str(spec), "--to", "onnx", "-o", str(tmp_path / "m.pt2"))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"torchspec export: error: --to onnx writes a .onnx file; -o {tmp_path / 'm.pt2'} "
        "does not end in .onnx"
    )
    done = process(
        "export", str(tmp_path / "model.safetensors"), "--to", "onnx", "-o", "m.onnx", "--set", "a=1"
    )
    assert done.returncode == 2 and "a MODEL file holds the spec it was trained from" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]
