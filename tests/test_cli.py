"""The ``torchspec`` command line, run as a real subprocess (``python -m torchspec``).

torch is the oracle: the parameter counts, layer types and shapes ``check --format json`` prints
are compared with the module ``torchspec.builder.build`` compiles and with a real forward pass (on the
meta device for the large specs, where a real one would cost gigabytes): every tensor of a layer's
tuple output (LSTM's h_n and c_n, attention's weights) and the whole analytic state_dict included.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
ZOO = sorted(p for pattern in ("*.yaml", "*.yml", "*.json") for p in (ROOT / "specs").glob(pattern))
LOCAL = [DATA / "small.yaml", DATA / "tiny.json"]
SMALL = DATA / "small.yaml"
# Environment variables that change how rich renders; the tests want the plain, non-TTY output.
_RICH_ENV = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: ", re.MULTILINE)


def run_cli(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """Run ``python -m torchspec ARGS`` in the repository root; returns the CompletedProcess."""
    environ = {k: v for k, v in os.environ.items() if k not in _RICH_ENV}
    environ["PYTHONIOENCODING"] = "utf-8"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *map(str, args)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def rel(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def test_zoo_is_not_empty() -> None:
    assert ZOO, "no specs found in specs/"
    assert ROOT / "specs" / "c3d.yaml" in ZOO


# -- check: every spec, and torch agrees with every number --------------------------------------


@pytest.mark.parametrize("spec", ZOO + LOCAL, ids=lambda p: rel(p))
def test_check_table_exits_0(spec: Path) -> None:
    proc = run_cli("check", rel(spec))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    from torchspec import infer_shapes

    report = infer_shapes(spec)
    assert proc.stdout.startswith(f"{report.name} ({rel(spec)})\n")
    assert f"Total params:          {report.params:,}\n" in proc.stdout
    assert "Traceback" not in proc.stdout


def _torch_type(module: Any) -> str:
    """The layer type torch's module is: its class name, or for a `causal: true` layer (torchspec's
    subclass that passes the mask, e.g. CausalTransformerEncoder) the torch class it extends."""
    cls = type(module)
    return cls.__mro__[1].__name__ if cls.__module__ == "torchspec.nn_attention" else cls.__name__


def _torch_oracle(spec: Path, batch: int, real_forward: bool) -> dict[str, Any]:
    """What torch says about the built module: params, per-leaf types/params/output shapes."""
    import torch

    import torchspec
    from torchspec.builder import build, random_input

    report = torchspec.infer_shapes(spec, batch=batch)
    # A real build (real parameters), unless it would not fit comfortably in memory.
    device = "cpu" if report.params <= 200_000_000 else "meta"
    model = build(spec, seed=0, device=device).eval()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    leaves = _spec_layers(model)
    layers = {name: {"type": _torch_type(m), "params": _count(m)} for name, m in leaves.items()}
    buffers = sum(b.numel() for b in model.buffers())
    state = [(name, list(t.shape)) for name, t in model.state_dict().items()]
    if not real_forward:  # the output shapes from a forward pass on the meta device (no memory)
        model = build(spec, device="meta").eval()
        leaves = _spec_layers(model)
    every: dict[str, list[list[int]]] = {}  # every tensor of a tuple output (LSTM's h_n, c_n)
    tensors = {name for name, m in leaves.items() if isinstance(m, torch.Tensor)}
    for name, module in leaves.items():
        if name in tensors:  # a learned tensor: its output is itself
            every[name] = [list(module.shape)]
            continue
        module.register_forward_hook(lambda _m, _i, out, name=name: every.__setitem__(name, _shapes(out)))
    dev = "cpu" if real_forward else "meta"
    torch.manual_seed(1)
    if real_forward:  # floats, or valid token ids for an int64 input
        x = random_input(report)
    else:
        x = torch.empty(
            report.input, device=dev, dtype=torch.float32 if report.id_range is None else torch.int64
        )
    with torch.no_grad():
        out = model(x)
    outputs = {name: shapes[0] for name, shapes in every.items()}  # the main output: the first
    if real_forward:
        assert torch.isfinite(out).all()
    return {
        "params": params,
        "trainable": trainable,
        "buffers": buffers,
        "output": list(out.shape),
        "layers": layers,
        "outputs": outputs,
        "every": every,
        "state": state,
        "tensors": tensors,
    }


def _count(layer: Any) -> int:
    """Parameters of a module, or of a learned tensor (an nn.Parameter its container holds)."""
    import torch

    if isinstance(layer, torch.Tensor):
        return layer.numel()
    return sum(p.numel() for p in layer.parameters())


def _spec_layers(model: Any) -> dict[str, Any]:
    """The modules the spec's layers became, by dotted path: the children of containers
    (Sequential, GraphModule), not the insides of a layer (MultiheadAttention's out_proj); and
    the learned tensors a GraphModule holds (its get_attr nodes), in the graph's order."""
    import torch

    found: dict[str, Any] = {}

    def walk(module: Any, prefix: str) -> None:
        if isinstance(module, torch.fx.GraphModule):
            names = [n.target for n in module.graph.nodes if n.op in ("call_module", "get_attr")]
        else:
            names = [name for name, _ in module.named_children()]
        for name in names:
            child = getattr(module, name)
            if isinstance(child, (torch.nn.Sequential, torch.fx.GraphModule)):
                walk(child, f"{prefix}{name}.")
            else:
                found[prefix + name] = child

    walk(model, "")
    return found


def _shapes(out: Any) -> list[list[int]]:
    """Every tensor's shape in a module's output, depth first (a tensor, or nested tuples)."""
    if isinstance(out, (tuple, list)):
        return [shape for item in out for shape in _shapes(item)]
    return [] if out is None else [list(out.shape)]


@pytest.mark.parametrize("spec", ZOO + LOCAL, ids=lambda p: rel(p))
def test_check_json_agrees_with_torch(spec: Path) -> None:
    import torchspec
    from torchspec.layers.base import tensors_of

    batch = 2
    proc = run_cli("check", rel(spec), "--format", "json", "--batch", str(batch))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    report = torchspec.infer_shapes(spec, batch=batch)
    ids = {"input_dtype", "input_range"} if report.spec.input_range is not None else set()
    assert set(data) == {"name", "input", "output", "params", "trainable_params", "macs", "layers"} | ids

    assert data == report.to_json()
    assert data["input"] == [batch, *report.spec.input_shape]
    # Real forward passes only where they are cheap; c3d's would be ~77 GMACs and ~400 MB.
    real = report.macs <= 2_000_000_000 and report.activation_bytes <= 200_000_000
    torch_says = _torch_oracle(spec, batch, real_forward=real)

    assert data["params"] == torch_says["params"]
    assert data["trainable_params"] == torch_says["trainable"]
    assert report.buffers == torch_says["buffers"]
    assert data["output"] == torch_says["output"]
    assert [layer["path"] for layer in data["layers"]] == list(torch_says["layers"])
    for layer in data["layers"]:
        want = torch_says["layers"][layer["path"]]
        assert (layer["path"], layer["type"], layer["params"]) == (
            layer["path"],
            want["type"],
            want["params"],
        )
        assert layer["output"] == torch_says["outputs"][layer["path"]], layer["path"]
    # every tensor of a tuple output (LSTM's h_n and c_n, attention's weights), not only the first
    for row in report.rows:
        assert [list(shape) for shape in tensors_of(row.out)] == torch_says["every"][row.path], row.path
    # the analytic state_dict of every layer, prefixed by its path, is the built model's, in order
    analytic = [(key, list(shape)) for key, shape in report.state_shapes().items()]
    assert analytic == torch_says["state"]
    assert len(analytic) == sum(len(row.state) for row in report.rows)
    # learned tensors are counted with the parameters, not as activations
    outputs = [
        s for name, shapes in torch_says["every"].items() if name not in torch_says["tensors"] for s in shapes
    ]
    activation = sum(4 * _numel(shape) for shape in outputs)
    assert report.activation_bytes == activation


def test_check_c3d_numbers() -> None:
    proc = run_cli("check", "specs/c3d.yaml", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["name"] == "c3d"
    assert data["input"] == [1, 3, 16, 112, 112]
    assert data["output"] == [1, 487]
    assert data["params"] == data["trainable_params"] == 79_991_015
    assert data["layers"][0] == {
        "path": "conv1",
        "type": "Conv3d",
        "output": [1, 64, 16, 112, 112],
        "params": 5248,
        "macs": 64 * 16 * 112 * 112 * 3 * 27,
    }


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _totals(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        label, sep, value = line.partition(":  ")
        if sep and not line.startswith(" "):
            out[label] = value.strip()
    return out


def test_batch_changes_shapes_and_activation_memory() -> None:
    from torchspec import infer_shapes
    from torchspec.report import format_bytes

    one, four = run_cli("check", rel(SMALL)), run_cli("check", rel(SMALL), "--batch", "4")
    assert one.returncode == four.returncode == 0
    t1, t4 = _totals(one.stdout), _totals(four.stdout)
    assert t1["Input shape"] == "[1, 3, 32, 32]" and t4["Input shape"] == "[4, 3, 32, 32]"
    assert t1["Output shape"] == "[1, 10]" and t4["Output shape"] == "[4, 10]"
    a1, a4 = infer_shapes(SMALL).activation_bytes, infer_shapes(SMALL, batch=4).activation_bytes
    assert a4 == 4 * a1
    assert t1["Activation memory"].startswith(format_bytes(a1) + " (batch 1")
    assert t4["Activation memory"].startswith(format_bytes(a4) + " (batch 4")
    assert t1["Total params"] == t4["Total params"] == "2,074"  # parameters do not depend on it
    assert "[4, 8, 32, 32]" in four.stdout and "[4, 8, 32, 32]" not in one.stdout

    data = json.loads(run_cli("check", rel(SMALL), "--batch", "4", "--format", "json").stdout)
    assert data["input"][0] == data["output"][0] == 4
    assert all(layer["output"][0] == 4 for layer in data["layers"])


def test_several_specs_give_a_json_list() -> None:
    specs = [SMALL, DATA / "tiny.json", ROOT / "specs" / "c3d.yaml"]
    proc = run_cli("check", *map(rel, specs), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, list)
    assert [d["name"] for d in data] == ["small-cnn", "tiny-mlp", "c3d"]


def test_one_spec_gives_one_object_even_in_a_list_of_one() -> None:
    data = json.loads(run_cli("check", rel(SMALL), "--format", "json").stdout)
    assert isinstance(data, dict) and data["name"] == "small-cnn"


BAD_SHAPE = """\
name: bad
input: [3, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3}
  - Flatten
  - {type: Conv2d, out_channels: 4, kernel_size: 3}
"""

BAD_FIELD = """\
name: bad-field
input: [3, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3}
  - {type: Linear, out_feature: 10}
"""


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_bad_spec_among_good_ones(tmp_path: Path, fmt: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SHAPE)
    bad2 = tmp_path / "bad-field.yaml"
    bad2.write_text(BAD_FIELD)
    tiny = DATA / "tiny.json"
    proc = run_cli("check", rel(SMALL), bad, rel(tiny), bad2, "--format", fmt)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    located = [(m["file"], int(m["line"]), int(m["col"])) for m in LOCATED.finditer(proc.stderr)]
    assert [(f, line) for f, line, _ in located] == [(str(bad), 6), (str(bad2), 5)]
    assert "Conv2d" in proc.stderr and "out_feature" in proc.stderr
    if fmt == "table":
        assert "small-cnn (tests/data/small.yaml)" in proc.stdout
        assert "tiny-mlp (tests/data/tiny.json)" in proc.stdout
        assert "bad" not in proc.stdout
    else:
        assert [d["name"] for d in json.loads(proc.stdout)] == ["small-cnn", "tiny-mlp"]


def test_a_single_bad_spec_prints_nothing_on_stdout(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SHAPE)
    for fmt in ("table", "json"):
        proc = run_cli("check", bad, "--format", fmt)
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.startswith(f"{bad}:6:")


@pytest.mark.parametrize("name", ["missing.yaml", "missing.json", "no-extension", "."])
def test_unreadable_spec_is_a_located_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name if name != "." else tmp_path
    proc = run_cli("check", path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"{path}:1:1: error: ")
    assert "Traceback" not in proc.stderr
    if name.startswith("missing"):
        assert "No such file or directory" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["check"],
        ["check", "specs/c3d.yaml", "--batch", "0"],
        ["check", "specs/c3d.yaml", "--batch", "-2"],
        ["check", "specs/c3d.yaml", "--batch", "two"],
        ["check", "specs/c3d.yaml", "--batch", "1.5"],
        ["check", "specs/c3d.yaml", "--format", "xml"],
        ["check", "specs/c3d.yaml", "--no-such-option"],
        ["no-such-command"],
        ["build"],
        ["build", "tests/data/small.yaml", "-o", "model.pt"],
        ["build", "tests/data/small.yaml", "-o", ".safetensors"],
        ["build", "tests/data/small.yaml", "--seed", "-1"],
        ["build", "tests/data/small.yaml", "--seed", "x"],
        ["build", "tests/data/small.yaml", "--batch", "0"],
        ["schema", "extra-argument"],
    ],
    ids=lambda a: " ".join(a) or "(none)",
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "usage: torchspec" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_usage_error_messages_say_what_is_wrong() -> None:
    proc = run_cli("check", "specs/c3d.yaml", "--batch", "0")
    assert "argument --batch: expected an integer >= 1, found 0" in proc.stderr
    proc = run_cli("build", "tests/data/small.yaml", "-o", "model.pt")
    assert "argument -o/--output: 'model.pt': the output must be a .safetensors file" in proc.stderr


# -- check does not import torch -----------------------------------------------------------------


def _imported(*args: str) -> set[str]:
    environ = {k: v for k, v in os.environ.items() if k not in _RICH_ENV}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "torchspec", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    assert lines and "imported package" in lines[0]
    return {ln.rsplit("|", 1)[1].strip() for ln in lines[1:]}


def _torch_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "torch" or m.startswith("torch.")}


@pytest.mark.parametrize(
    "args",
    [
        ["check", "specs/c3d.yaml"],
        ["check", "specs/c3d.yaml", "tests/data/small.yaml", "--format", "json"],
        ["schema"],
    ],
    ids=" ".join,
)
def test_check_and_schema_do_not_import_torch(args: list[str]) -> None:
    modules = _imported(*args)
    assert {"torchspec.cli", "torchspec.infer", "pydantic"} <= modules  # the parse works
    assert _torch_modules(modules) == set()
    assert "safetensors" not in modules


def test_the_import_detector_sees_torch_when_build_runs() -> None:
    assert "torch" in _torch_modules(_imported("build", "tests/data/tiny.json"))


# -- build -------------------------------------------------------------------------------------------


def test_build_prints_table_tree_and_meta_verification() -> None:
    proc = run_cli("build", rel(SMALL), "--batch", "3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "small-cnn (tests/data/small.yaml)" in out
    assert "Total params:          2,074" in out
    assert "small-cnn: Sequential" in out and "fc: Linear(in_features=64, out_features=10, bias=True)" in out
    line = "verified: a forward pass on the meta device gives [3, 10], the inferred output shape"
    assert line in out.splitlines()
    assert "saved" not in out


def test_build_saves_safetensors_that_load_model_rebuilds(tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    import torchspec
    from torchspec.builder import build

    path = tmp_path / "model.safetensors"
    proc = run_cli("build", rel(SMALL), "--seed", "7", "-o", path)
    assert proc.returncode == 0, proc.stderr
    assert f"saved 2,074 parameters and the spec to {path}" in proc.stdout
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["torchspec.spec"]) == torchspec.load_spec(SMALL).to_data()

    loaded = torchspec.load_model(path)
    same_seed = build(SMALL, seed=7)  # the CLI's seed gives the same weights in-process
    on_disk = load_file(str(path))
    for state in (loaded.state_dict(), same_seed.state_dict()):
        assert sorted(state) == sorted(on_disk)
        for key, value in state.items():
            assert torch.equal(value, on_disk[key]), key
    other_seed = build(SMALL, seed=8)
    assert not torch.equal(other_seed.state_dict()["fc.weight"], on_disk["fc.weight"])

    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), same_seed.eval()(x))
    assert str(loaded) == str(same_seed)


def test_build_prints_a_long_output_path_on_one_line(tmp_path: Path) -> None:
    """The saved line is never broken at the console width (120 off a terminal): the path stays copyable."""
    from conftest import cli

    path = tmp_path / ("d" * 120) / "model.safetensors"
    path.parent.mkdir()
    proc = cli("build", str(SMALL), "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"\nsaved 2,074 parameters and the spec to {path}\n" in proc.stdout


def test_build_with_the_same_seed_writes_the_same_weights(tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open

    def read(path: Path) -> tuple[dict[str, str], dict[str, Any]]:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for path in (a, b):
        assert run_cli("build", DATA / "tiny.json", "--seed", "3", "-o", path).returncode == 0
    # Not byte for byte: safetensors writes the metadata map in no fixed order.
    (meta_a, tensors_a), (meta_b, tensors_b) = read(a), read(b)
    assert meta_a == meta_b
    assert sorted(tensors_a) == sorted(tensors_b) == ["fc1.bias", "fc1.weight", "fc2.weight"]
    assert all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)


def test_build_on_an_unavailable_device_is_a_clear_error() -> None:
    import torch

    devices = ["cuda:999", "gpu", "meta"]
    if not torch.cuda.is_available():
        devices.append("cuda")
    for device in devices:
        proc = run_cli("build", DATA / "tiny.json", "--device", device)
        assert proc.returncode == 1, (device, proc.stderr)
        assert proc.stderr.startswith("torchspec build: error: "), proc.stderr
        assert f"'{device}'" in proc.stderr or device == "meta"
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""  # refused before anything is printed or built


def test_build_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "model.safetensors"
    proc = run_cli("build", DATA / "tiny.json", "-o", path)
    assert proc.returncode == 1
    assert "cannot write" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not path.exists()


def test_build_of_a_bad_spec_is_a_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SHAPE)
    proc = run_cli("build", bad, "-o", tmp_path / "m.safetensors")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{bad}:6:")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`torchspec check big.yaml | head -2`: the pipe closes mid-output; exit quietly, like grep."""
    big = tmp_path / "big.yaml"  # a table far larger than a pipe's buffer, so the write really fails
    big.write_text("name: big\ninput: [8]\nlayers:\n" + "  - {type: Linear, out_features: 8}\n" * 3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchspec", "check", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(64)  # like `head`: read a little, then close the pipe
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
