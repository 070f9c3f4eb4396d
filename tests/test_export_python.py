"""`torchspec export --to python`: a standalone .py that reproduces the model.

The oracle is the model torchspec builds: each exported file is imported in a fresh process (which
has never seen torchspec's modules), its class built, the model's state_dict loaded with
strict=True (same keys, in the same order), its outputs compared with the model's, and it is traced
with torch.fx. The shape comments are checked against the shape inference at two batch sizes (N=1,
N=2), ruff checks and formats the files as they are, and they import nothing but torch.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import cli, process

from torchspec.builder import random_input
from torchspec.errors import SpecError
from torchspec.export import load_exportable
from torchspec.export.python import write_python
from torchspec.infer import infer_shapes
from torchspec.layers import TupleOut

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SMALL = ["input=[3,32,32]"]
TINY_VIT = {"image": 32, "patch": 8, "layers": 2, "heads": 2, "dim": 16, "mlp": 32, "classes": 10}
# name -> (spec, variant, --set): a plain stack, blocks with a shortcut (Add), learned tensors and
# attention (tuples), recurrent tuples on token ids, torchspec's own stateful modules (positions,
# LayerNorm2d, stochastic depth), Concat in blocks, frames folded into the batch
CASES: dict[str, tuple[str, str | None, list[str]]] = {
    "mlp": ("mlp.json", None, []),  # numbered layers only: an nn.Sequential subclass
    "lenet": ("lenet5.yaml", None, []),
    "resnet18": ("resnet.yaml", "resnet18", SMALL),
    "vit": ("vit.yaml", None, [f"vars.{k}={v}" for k, v in TINY_VIT.items()]),
    "lstm": ("lstm_tokens.yaml", None, []),
    "transformer": ("transformer_tokens.yaml", None, []),
    "gpt": ("gpt_tiny.yaml", None, []),  # causal: true, its subclass written into the file
    "convnext": ("convnext.yaml", None, ["vars.dims=[8,16,32,64]", "vars.depths=[1,1,2,1]", *SMALL]),
    "densenet": ("densenet.yaml", None, ["vars.depths=[1,2,1,1]", "vars.growth=4", "vars.init=8", *SMALL]),
    "motion": ("cnn_lstm_motion.yaml", None, []),
    "wired": ("wired.yaml", None, []),
    "names": ("names.yaml", None, []),
}
# every merge and tensor op as a torch expression; a constant learned tensor; a tuple at the end
WIRED = """\
name: wired
input: [10, 8]
layers:
  - {name: a, type: Linear, out_features: 8}
  - {name: b, type: Linear, out_features: 8}
  - {name: s, type: Add, from: [a, input, b]}
  - {name: tok, type: Parameter, shape: [1, 1, 8], init: constant, value: 0.5}
  - {name: e, type: ExpandBatch, from: [tok, s]}
  - {name: c, type: Concat, from: [e, s], dim: 1}
  - {name: parts, type: Chunk, chunks: 2, dim: 2}
  - {type: Mul, from: [parts.0, parts.1]}
  - {type: Mean, dim: [1], keepdim: true}
  - {type: Split, split_size_or_sections: [2, 2], dim: 2}
"""
# names that cannot be attributes (a keyword, numbers with state), names of torch and self, a
# block named as the spec, an unnamed nn.Sequential with state
NAMES = """\
name: basic
input: [4, 8, 8]
blocks:
  basic:
    params: {c: int}
    layers: [{name: lambda, type: Conv2d, out_channels: $c, kernel_size: 3, padding: 1}, BatchNorm2d, ReLU]
layers:
  - {type: basic, c: 4}
  - {type: basic, c: 6}
  - {name: self, type: Sequential, layers: [ReLU, Identity]}
  - {name: torch, type: Conv2d, out_channels: 6, kernel_size: 1}
  - {type: Sequential, layers: [{type: Conv2d, out_channels: 6, kernel_size: 1}, ReLU]}
  - {name: pool, type: AdaptiveAvgPool2d, output_size: 1}
  - Flatten
  - {type: Reshape, shape: [1, 6]}
  - {name: lstm, type: LSTM, hidden_size: 5, batch_first: true}
"""  # fmt: skip

# Run in a fresh process: import each file, build, load strictly, compare outputs, trace with fx.
CHECKER = """
import importlib.util, json, sys
import torch
torch.manual_seed(0)
results = {}
for name, path, cls in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not any(m.startswith("torchspec") for m in sys.modules), name
    model = getattr(module, cls)().eval()
    saved = torch.load(path[:-3] + ".pt")
    keys = list(model.state_dict())
    model.load_state_dict(saved["state"], strict=True)
    with torch.no_grad():
        out = model(saved["x"])
        try:
            traced = torch.fx.symbolic_trace(model)(saved["x"])
        except (SyntaxError, RuntimeError):  # fx writes `.lambda` (a layer named as a keyword);
            traced = out + float("inf")  # fx in torch's MultiheadAttention (a causal subclass)
    results[name] = {
        "keys": keys,
        "error": (out - saved["y"]).abs().max().item(),
        "traced": (traced - saved["y"]).abs().max().item(),
    }
print(json.dumps(results))
"""


def _export(tmp: Path, name: str) -> tuple[Any, Path, str]:
    spec, variant, sets = CASES[name]
    if spec in ("wired.yaml", "names.yaml"):
        (tmp / spec).write_text(WIRED if spec == "wired.yaml" else NAMES)
    item = load_exportable(
        SPECS / spec if (SPECS / spec).exists() else tmp / spec, variant=variant, overrides=sets
    )
    path = tmp / f"{name}.py"
    assert write_python(item, path) == [path]
    x = random_input(item.report, torch.Generator().manual_seed(1), count=2)
    with torch.no_grad():
        y = item.model(x)
    torch.save({"state": item.model.state_dict(), "x": x, "y": y}, tmp / f"{name}.pt")
    cls = re.findall(r"^class (\w+)\(", path.read_text(), re.M)[-1]  # the model class comes last
    return item, path, cls


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path, str]]:
    tmp = tmp_path_factory.mktemp("exported")
    return {name: _export(tmp, name) for name in CASES}


def test_each_file_reproduces_the_model_in_a_fresh_process(exported: dict[str, Any]) -> None:
    jobs = [(name, str(path), cls) for name, (_, path, cls) in exported.items()]
    done = subprocess.run(
        [sys.executable, "-c", CHECKER, json.dumps(jobs)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for name, (item, _, _) in exported.items():
        assert results[name]["keys"] == list(item.model.state_dict()), name
        assert results[name]["error"] <= 1e-5, name
        # torch.fx fails on `lambda`, and traces into the causal subclass (no torch.nn class, so no
        # leaf), whose super().forward is torch's own, not traceable: a causal model is not fx's
        assert results[name]["traced"] <= 1e-5 or name in ("names", "gpt"), name


def test_ruff_passes_and_only_torch_is_imported(exported: dict[str, Any]) -> None:
    files = [str(path) for _, path, _ in exported.values()]
    rules = "E,F,W,I,B,UP,SIM,RUF"
    for command in (["check", "--isolated", "--select", rules], ["format", "--isolated", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *files], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    for path in files:
        tree = ast.parse(Path(path).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"torch"}, (path, imported)


def _shape(out: Any) -> Any:
    return tuple(_shape(i) for i in out.items) if isinstance(out, TupleOut) else tuple(out)


def _comments(text: str, cls: str) -> list[str]:
    """The shape comments of class ``cls``, in order."""
    body = text.split(f"\nclass {cls}(", 1)[1].split("\nclass ", 1)[0]
    if "def forward" in body:  # one line per layer
        return re.findall(r"#\s*(\(.*\))\s*$", body.split("def forward", 1)[1], re.M)
    return re.findall(r"^ {12}(?:\S.*)?#\s*(\(.*\))\s*$", body, re.M)  # nn.Sequential: its elements


def test_the_comments_are_the_inferred_shapes(exported: dict[str, Any]) -> None:
    for name, (item, path, cls) in exported.items():
        text = path.read_text()
        at = {n: {row.path: _shape(row.out or row.output) for row in infer_shapes(item.report.spec, n).rows}
              for n in (1, 2)}  # fmt: skip
        scope = item.report.scope
        expected = []  # the top level's layers (a container: its last layer's output)
        for node in scope.nodes:
            while node.scope is not None:
                node = node.scope.nodes[-1]
            if not node.layer.learned_tensor:
                expected.append(node.path)
        comments = _comments(text, cls)
        assert len(comments) == len(expected), name
        for n in (1, 2):  # N is the batch: the comment holds at every batch size
            assert [eval(c, {"N": n}) for c in comments] == [at[n][p] for p in expected], name
            for comment in re.findall(r"#\s*(\(.*\))\s*$", text, re.M):  # every concrete one elsewhere
                if re.fullmatch(r"[\d\sN,*()]+", comment):
                    assert eval(comment, {"N": n}) in at[n].values(), (name, comment)


def test_blocks_are_classes_named_after_them(exported: dict[str, Any]) -> None:
    text = exported["resnet18"][1].read_text()
    assert re.findall(r"^class (\w+)\(", text, re.M) == [
        "Basic",
        "Downsample",
        "Stage",
        "Basic2",
        "Stage2",
        "Resnet",
    ]
    assert "self.layer2 = Stage2(64, 128)" in text  # what differs between uses: the block's parameters
    assert "out = self.conv1(x)  # (N, planes, H, W)" in text
    vit = exported["vit"][1].read_text()
    assert "self.class_token = nn.Parameter(torch.zeros(1, 1, 16))" in vit
    assert "torch.cat([x, patches], dim=1)" in vit  # a merge is a torch expression


def test_the_cli_exports_a_spec(tmp_path: Path) -> None:
    out = tmp_path / "lenet.py"
    done = process("export", str(SPECS / "lenet5.yaml"), "--to", "python", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out}\n"
    assert "class Lenet5(nn.Module):" in out.read_text()


def test_a_model_file_exports_its_trained_weights_beside(tmp_path: Path) -> None:
    spec, model = SPECS / "lstm_tokens.yaml", tmp_path / "model.safetensors"
    assert cli("build", str(spec), "-o", str(model), "--seed", "3").returncode == 0
    out = tmp_path / "tokens.py"
    done = process("export", str(model), "--to", "python", "-o", str(out))
    assert done.returncode == 0, done.stderr
    weights = tmp_path / "tokens.safetensors"
    assert done.stdout == f"wrote {out}\nwrote {weights}\n"
    assert 'safetensors.torch.load_file("tokens.safetensors")' in out.read_text()
    script = (
        "import sys, torch, safetensors.torch; sys.path.insert(0, sys.argv[1]); import tokens\n"
        "m = tokens.LstmTokens().eval(); m.load_state_dict(safetensors.torch.load_file(sys.argv[2]))\n"
        "x = torch.load(sys.argv[3]); torch.save(m(x).detach(), sys.argv[3])"
    )
    from torchspec.builder import load_model

    trained = load_model(model)
    x = random_input(infer_shapes(spec), torch.Generator().manual_seed(0), count=2)
    torch.save(x, tmp_path / "x.pt")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(weights), str(tmp_path / "x.pt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "x.pt"), trained(x), atol=1e-6)


def test_an_output_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    spec = str(SPECS / "lenet5.yaml")
    (tmp_path / "dir.py").mkdir()
    done = cli("export", spec, "--to", "python", "-o", str(tmp_path / "dir.py"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "is a directory" in done.stderr
    done = cli("export", spec, "--to", "python", "-o", str(tmp_path / "missing" / "x.py"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and "x.py" in done.stderr
    model = tmp_path / "model.safetensors"
    assert cli("build", spec, "-o", str(model)).returncode == 0
    (tmp_path / "m.safetensors").mkdir()  # the weights' place is taken: nothing is written
    done = cli("export", str(model), "--to", "python", "-o", str(tmp_path / "m.py"))
    assert done.returncode == 1 and "m.safetensors" in done.stderr
    assert not (tmp_path / "m.py").exists()


def test_a_file_that_would_not_reproduce_the_model_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchspec.export import python_forward

    real = python_forward._inline

    def wrong(kind: str, ins: list[str], *rest: Any) -> str:  # a generator bug: Add as a subtraction
        return " - ".join(ins) if kind == "Add" else real(kind, ins, *rest)

    monkeypatch.setattr(python_forward, "_inline", wrong)
    item = load_exportable(SPECS / "resnet.yaml", variant="resnet18", overrides=SMALL)
    with pytest.raises(SpecError, match="computes other outputs than the model; this is a torchspec bug"):
        write_python(item, tmp_path / "r.py")
    assert list(tmp_path.iterdir()) == []
