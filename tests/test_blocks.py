"""Blocks, repeat, when, variants and --set vars (torchspec.expand): what they expand to, checked
against real torch modules, real files in three formats and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import cli
from torch import nn

import torchspec
from torchspec import SpecError, load_spec
from torchspec.expand import MAX_EXPANDED, expand_document
from torchspec.layers import REGISTRY
from torchspec.source import parse_document

NET = """\
name: net
input: [3, 16, 16]
vars: {width: 8, depths: [2, 3], classes: 5}
variants:
  tiny: {width: 4, depths: [1, 1]}
  wide: {width: 16}
blocks:
  unit:                                   # conv-bn-relu, optionally strided
    params: {channels: int, stride: {type: int, default: 1}}
    layers:
      - {name: conv, type: Conv2d, out_channels: $channels, kernel_size: 3, stride: $stride, padding: 1,
         bias: false}
      - {name: bn, type: BatchNorm2d}
      - ReLU
  stage:                                  # a block made of blocks
    params: {channels: int, depth: int}
    layers:
      - {type: unit, channels: $channels, stride: 2}
      - {type: unit, channels: $channels, repeat: $(depth - 1)}
layers:
  - {name: stem, type: unit, channels: $width}
  - {name: stage1, type: stage, channels: $(width * 2), depth: $(depths[0])}
  - {name: stage2, type: stage, channels: $(width * 4), depth: $(depths[1])}
  - {type: AdaptiveAvgPool2d, output_size: 1}
  - Flatten
  - {name: head, type: Linear, out_features: $classes}
"""


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def expanded(text: str, variant: str | None = None, fmt: str = "yaml") -> Any:
    doc = parse_document(text, "t." + fmt, fmt)  # type: ignore[arg-type]
    return expand_document(doc, variant=variant, builtin=REGISTRY).data


# -- blocks build the module a person would write -------------------------------------------------


def unit(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False))
    model.add_module("bn", nn.BatchNorm2d(cout))
    model.append(nn.ReLU())  # unnamed: numbered by position, "2"
    return model


def reference(width: int, depths: list[int], classes: int) -> nn.Sequential:
    def stage(cin: int, cout: int, depth: int) -> nn.Sequential:
        return nn.Sequential(unit(cin, cout, 2), *[unit(cout, cout) for _ in range(depth - 1)])

    model = nn.Sequential()
    model.add_module("stem", unit(3, width))
    model.add_module("stage1", stage(width, width * 2, depths[0]))
    model.add_module("stage2", stage(width * 2, width * 4, depths[1]))
    model.add_module("3", nn.AdaptiveAvgPool2d(1))
    model.add_module("4", nn.Flatten())
    model.add_module("head", nn.Linear(width * 4, classes))
    return model


@pytest.mark.parametrize(
    ("variant", "sets", "width", "depths"),
    [
        (None, [], 8, [2, 3]),
        ("tiny", [], 4, [1, 1]),
        ("wide", [], 16, [2, 3]),
        ("tiny", ["vars.width=6"], 6, [1, 1]),  # the command line wins over the variant
        (None, ["vars.depths=[1, 4]"], 8, [1, 4]),
    ],
)
def test_state_dict_nests_like_a_hand_written_module(
    tmp_path: Path, variant: str | None, sets: list[str], width: int, depths: list[int]
) -> None:
    path = write(tmp_path, NET)
    model = torchspec.build(path, seed=0, variant=variant, overrides=sets)
    ref = reference(width, depths, 5)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]
    assert ("stage2.1.conv.weight" in model.state_dict()) == (depths[1] > 1)
    ref.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    model.eval(), ref.eval()
    torch.testing.assert_close(model(x), ref(x))
    spec = load_spec(path, variant=variant, overrides=sets)
    assert torchspec.infer_shapes(spec).params == sum(p.numel() for p in ref.parameters())


def test_repeat_numbers_copies_as_nn_sequential_does() -> None:
    data = expanded(
        """\
name: r
input: [4]
layers:
  - {name: first, type: Linear, out_features: 4}
  - {type: Linear, out_features: 4, repeat: 3}
  - ReLU
  - {name: group, type: Linear, out_features: 4, repeat: 2}
  - {type: Linear, out_features: $(index + 1), repeat: 2}
"""
    )
    spec = load_spec(data)
    model = torchspec.build(spec)
    ref = nn.Sequential()
    ref.add_module("first", nn.Linear(4, 4))
    for _ in range(3):
        ref.append(nn.Linear(4, 4))  # append numbers by position: 1, 2, 3
    ref.append(nn.ReLU())
    ref.add_module("group", nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    ref.append(nn.Linear(4, 1))
    ref.append(nn.Linear(1, 2))
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]
    assert list(model.state_dict()) == list(ref.state_dict())
    assert model(torch.randn(2, 4)).shape == (2, 2)


# The rule: a repeated layer whose name reads `index` gives each copy its own name, as siblings
# (no container); the copies chain, the first reads the layer's from:, later layers name them.
NAMED_COPIES = {
    "yaml-flow": """\
name: d
input: [4]
blocks:
  unit: {params: {width: int}, layers: [{name: fc, type: Linear, out_features: $width}, {type: Tanh}]}
layers:
  - {name: stem, type: Linear, out_features: 6}
  - {name: unit$(index + 1), type: unit, width: $(6 + index), repeat: 3, from: input}
  - {name: tail$(index), type: Linear, out_features: 5, repeat: 2}
  - {name: head, type: Linear, out_features: 6, from: unit2}
  - {type: Add, from: [head, stem]}
""",
    "yaml-block": """\
name: d
input: [4]
blocks:
  unit:
    params:
      width: int
    layers:
      - name: fc
        type: Linear
        out_features: $width
      - type: Tanh
layers:
  - name: stem
    type: Linear
    out_features: 6
  - name: unit$(index + 1)
    type: unit
    width: $(6 + index)
    repeat: 3
    from: input
  - name: tail$(index)
    type: Linear
    out_features: 5
    repeat: 2
  - name: head
    type: Linear
    out_features: 6
    from: unit2
  - type: Add
    from: [head, stem]
""",
}
NAMED_COPIES["json"] = json.dumps(
    {
        "name": "d",
        "input": [4],
        "blocks": {
            "unit": {
                "params": {"width": "int"},
                "layers": [{"name": "fc", "type": "Linear", "out_features": "$width"}, {"type": "Tanh"}],
            }
        },
        "layers": [
            {"name": "stem", "type": "Linear", "out_features": 6},
            {"name": "unit$(index + 1)", "type": "unit", "width": "$(6 + index)", "repeat": 3}
            | {"from": "input"},
            {"name": "tail$(index)", "type": "Linear", "out_features": 5, "repeat": 2},
            {"name": "head", "type": "Linear", "out_features": 6, "from": "unit2"},
            {"type": "Add", "from": ["head", "stem"]},
        ],
    }
)


class _NamedCopies(nn.Module):
    """What NAMED_COPIES means, written by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 6)
        widths = [4, 6, 7, 8]
        for k in range(3):  # named copies of the block: fc, then the unnamed Tanh numbered "1"
            unit = OrderedDict([("fc", nn.Linear(widths[k], widths[k + 1])), ("1", nn.Tanh())])
            self.add_module(f"unit{k + 1}", nn.Sequential(unit))
        self.tail0, self.tail1 = nn.Linear(8, 5), nn.Linear(5, 5)
        self.head = nn.Linear(7, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u2 = self.unit2(self.unit1(x))
        self.tail1(self.tail0(self.unit3(u2)))  # computed, never read: the spec warns about it
        return self.head(u2) + self.stem(x)


@pytest.mark.parametrize("fmt", sorted(NAMED_COPIES))
def test_a_name_reading_index_names_each_copy(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, NAMED_COPIES[fmt], "d." + fmt.split("-")[0])
    layers = load_spec(path).to_data()["layers"]
    names = ["stem", "unit1", "unit2", "unit3", "tail0", "tail1", "head", None]
    assert [layer.get("name") for layer in layers] == names  # siblings: no container
    assert layers[1]["from"] == "input" and "from" not in layers[2]  # the first copy reads from:
    model = torchspec.build(path, seed=0)
    ref = _NamedCopies()
    assert list(model.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), ref(x))


@pytest.mark.parametrize("count", ["repeat: 0", "repeat: 2, when: false", "repeat: $(1 - 1), from: input"])
def test_named_copies_left_out_leave_nothing(count: str) -> None:
    # no copies, no names: the next layer reads what the copies would have read
    layer = f"{{name: u$(index + 1), type: Linear, out_features: 4, {count}}}"
    layers = expanded(f"name: r\ninput: [4]\nlayers:\n  - {{name: a, type: ReLU}}\n  - {layer}\n  - Tanh\n")
    tanh: Any = {"type": "Tanh", "from": "input"} if "from" in count else "Tanh"
    assert layers["layers"] == [{"name": "a", "type": "ReLU"}, tanh]


@pytest.mark.parametrize(
    ("layer", "message", "col"),
    [
        # two copies named alike: the duplicate-name rule, at the name
        ("{name: x$(index // 2), type: ReLU, repeat: 3}", "duplicate layer name 'x0'", 12),
        # index outside a repeat: the hint says where it exists (it cannot be a var)
        ("{name: x$(index), type: ReLU}", "unknown variable 'index'", 15),
    ],
)
def test_copy_names_that_cannot_work_are_located_errors(
    tmp_path: Path, layer: str, message: str, col: int
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, f"name: r\ninput: [4]\nlayers:\n  - {layer}\n"))
    (problem,) = info.value.problems
    assert message in problem.message and (problem.line, problem.col) == (4, col)
    if "index" in message:
        assert problem.hints == ("'index' is the copy number, known only inside a layer with `repeat:`",)


@pytest.mark.parametrize("count", [0, 1, 4])
def test_repeat_counts_and_zero_leaves_the_layer_out(count: int) -> None:
    repeated = f"{{type: Linear, out_features: 4, repeat: {count}}}"
    text = f"name: r\ninput: [4]\nlayers:\n  - ReLU\n  - {repeated}\n  - Tanh\n"
    layers = expanded(text)["layers"]
    assert layers == ["ReLU", *[{"type": "Linear", "out_features": 4}] * count, "Tanh"]


# -- when and references ---------------------------------------------------------------------------

RESIDUAL = """\
name: res
input: [8, 8, 8]
vars: {down: true}
layers:
  - {name: conv1, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - {name: bn2, type: BatchNorm2d}
  - {name: downsample, type: Conv2d, from: input, out_channels: 8, kernel_size: 1, when: $down}
  - {type: Add, from: [bn2, downsample]}
"""


def test_when_true_keeps_and_false_rewires_readers_to_its_input() -> None:
    kept = expanded(RESIDUAL)["layers"]
    assert [layer.get("name") for layer in kept] == ["conv1", "bn2", "downsample", None]
    assert kept[3]["from"] == ["bn2", "downsample"] and "when" not in kept[2]
    gone = expanded(RESIDUAL.replace("down: true", "down: false"))["layers"]
    assert [layer.get("name") for layer in gone] == ["conv1", "bn2", None]
    assert gone[2] == {"type": "Add", "from": ["bn2", "input"]}  # downsample read the input


@pytest.mark.parametrize(
    ("layers", "want"),
    [
        # the next layer read it implicitly: it now reads what the left-out layer read
        (
            ["{name: a, type: ReLU}", "{name: b, type: Tanh, from: input, when: false}", "Sigmoid"],
            [{"name": "a", "type": "ReLU"}, {"type": "Sigmoid", "from": "input"}],
        ),
        # a chain of left-out layers: references follow it to the first real input
        (
            [
                "{name: a, type: ReLU}",
                "{name: b, type: Tanh, when: false}",
                "{name: c, type: Tanh, from: b, when: false}",
                "{type: Add, from: [a, c]}",
            ],
            [{"name": "a", "type": "ReLU"}, {"type": "Add", "from": ["a", "a"]}],
        ),
        # its input is an unnamed sibling that a later layer cannot name: an Identity stands in
        (
            ["ReLU", "{name: b, type: Tanh, when: false}", "{type: Add, from: [b, input]}"],
            ["ReLU", {"name": "b", "type": "Identity"}, {"type": "Add", "from": ["b", "input"]}],
        ),
        # ...but only when someone names it
        (["ReLU", "{name: b, type: Tanh, when: false}", "Sigmoid"], ["ReLU", "Sigmoid"]),
        # last in its list and reading something else: the list still outputs that
        (
            ["{name: a, type: ReLU}", "Tanh", "{type: Sigmoid, from: a, when: false}"],
            [{"name": "a", "type": "ReLU"}, "Tanh", {"type": "Identity", "from": "a"}],
        ),
        # first in its list: readers read the container's input
        (
            ["{name: a, type: ReLU, when: false}", "{type: Add, from: [a, input]}"],
            [{"type": "Add", "from": ["input", "input"]}],
        ),
    ],
)
def test_left_out_layers_are_read_as_their_input(layers: list[str], want: list[Any]) -> None:
    text = "name: w\ninput: [4]\nlayers:\n" + "".join(f"  - {line}\n" for line in layers)
    assert expanded(text)["layers"] == want


def test_reading_a_left_out_merge_is_an_error() -> None:
    text = """\
name: w
input: [4]
layers:
  - {name: a, type: ReLU}
  - {name: m, type: Add, from: [a, input], when: false}
  - {type: Add, from: [m, a]}
"""
    with pytest.raises(SpecError) as info:
        expanded(text)
    assert "'m' is left out and read several inputs" in str(info.value)
    assert info.value.problems[0].line == 6


# -- variants and --set --------------------------------------------------------------------------


def test_variant_and_set_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    base = json.loads(run_cli("check", str(path), "--format", "json").stdout)
    tiny = json.loads(run_cli("check", str(path), "--variant", "tiny", "--format", "json").stdout)
    wide = run_cli("check", str(path), "--set", "vars.width=16", "--format", "json")
    assert wide.returncode == 0, wide.stderr
    variant_wide = json.loads(run_cli("check", str(path), "--variant", "wide", "--format", "json").stdout)
    assert json.loads(wide.stdout) == variant_wide
    assert tiny["params"] < base["params"] < variant_wide["params"]
    assert tiny["params"] == sum(p.numel() for p in reference(4, [1, 1], 5).parameters())


@pytest.mark.parametrize("command", ["check", "build", "expand", "bench"])
def test_every_command_takes_variant(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, NET)
    bad = run_cli(command, str(path), "--variant", "tyny")
    assert bad.returncode == 1
    assert bad.stderr.startswith("--variant tyny: error: unknown variant 'tyny'")
    assert "did you mean 'tiny'?" in bad.stderr and "variants: tiny, wide" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_variant_and_set_mistakes_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, NET.replace("wide: {width: 16}", "wide: {widht: 16}"))
    result = run_cli("check", str(path))
    assert result.returncode == 1
    assert f"{path}:6:10: error: variant 'wide' sets 'widht', which is not declared in vars" in result.stderr
    assert "did you mean 'width'?" in result.stderr
    good = write(tmp_path, NET, "good.yaml")
    result = run_cli("check", str(good), "--set", "vars.widht=3")
    assert result.returncode == 1
    assert result.stderr.startswith("--set vars.widht=3: error: vars.widht is not declared")
    none = write(tmp_path, "name: p\ninput: [4]\nlayers: [ReLU]\n", "plain.yaml")
    result = run_cli("check", str(none), "--variant", "x")
    assert result.returncode == 1 and "the spec has no variants" in result.stderr


def test_recorded_in_safetensors_and_rebuilt(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    out = tmp_path / "m.safetensors"
    result = run_cli("build", str(path), "--variant", "tiny", "--set", "vars.classes=3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["torchspec.variant"] == "tiny"
    assert json.loads(meta["torchspec.overrides"]) == ["vars.classes=3"]
    assert "vars" not in json.loads(meta["torchspec.spec"])  # the spec stored is the expanded one
    model = torchspec.load_model(out)
    ref = reference(4, [1, 1], 3)
    assert list(model.state_dict()) == list(ref.state_dict())


# -- formats ----------------------------------------------------------------------------------------

FLOW = """\
name: f
input: [6]
vars: {n: 4, sizes: [3, 5]}
layers: [{type: Linear, out_features: $(max(n, sizes[1]) * 2)}, {type: Linear, out_features: $n}]
"""
BLOCK = """\
name: f
input: [6]
vars:
  n: 4
  sizes: [3, 5]
layers:
  - type: Linear
    out_features: $(max(n, sizes[1]) * 2)
  - type: Linear
    out_features: $n
"""
JSON = """{
  "name": "f", "input": [6], "vars": {"n": 4, "sizes": [3, 5]},
  "layers": [{"type": "Linear", "out_features": "$(max(n, sizes[1]) * 2)"},
             {"type": "Linear", "out_features": "$n"}]
}
"""


@pytest.mark.parametrize(("text", "fmt"), [(FLOW, "yaml"), (BLOCK, "yaml"), (JSON, "json")])
def test_expressions_in_yaml_flow_block_and_json(text: str, fmt: str) -> None:
    data = expanded(text, fmt=fmt)
    assert data["layers"] == [{"type": "Linear", "out_features": 10}, {"type": "Linear", "out_features": 4}]
    assert "vars" not in data


@pytest.mark.parametrize(("text", "fmt"), [(FLOW, "yaml"), (BLOCK, "yaml"), (JSON, "json")])
def test_expression_errors_point_at_the_column_in_each_format(text: str, fmt: str) -> None:
    bad = text.replace("sizes[1]", "sizes[7]")
    with pytest.raises(SpecError) as info:
        expanded(bad, fmt=fmt)
    (problem,) = info.value.problems
    assert "index 7 is out of range" in problem.message
    assert problem.source_line is not None
    assert problem.source_line[problem.col - 1 :].startswith("[7]")  # the caret is under the index


# -- bounds -----------------------------------------------------------------------------------------


def test_nested_repeats_stop_before_they_are_made() -> None:
    text = """\
name: big
input: [4]
blocks:
  wide:
    layers:
      - {type: ReLU, repeat: 1000}
layers:
  - {type: wide, repeat: 1000}
"""
    with pytest.raises(SpecError) as info:
        expanded(text)
    (problem,) = info.value.problems
    assert (problem.line, problem.col) == (8, 26)  # the outer repeat
    assert f"past {MAX_EXPANDED:,} nodes" in problem.message


def test_huge_repeat_counts_are_refused() -> None:
    with pytest.raises(SpecError, match="would expand the spec past"):
        expanded("name: b\ninput: [4]\nlayers:\n  - {type: ReLU, repeat: $(10 ** 15)}\n")


def test_recursion_direct_and_indirect() -> None:
    direct = "name: r\ninput: [4]\nblocks:\n  a:\n    layers: [{type: a}]\nlayers: [{type: a}]\n"
    with pytest.raises(SpecError, match=r"block 'a' uses itself: a -> a"):
        expanded(direct)


def test_expand_round_trip_gives_the_same_table(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    for args in ([], ["--variant", "tiny"], ["--set", "vars.width=12"]):
        text = run_cli("expand", str(path), *args)
        assert text.returncode == 0, text.stderr
        body = "".join(line for line in text.stdout.splitlines(True) if not line.startswith("#"))
        assert "$" not in body and "vars" not in body and "repeat" not in body and "blocks" not in body
        out = write(tmp_path, text.stdout, "expanded.yaml")
        again = run_cli("check", str(out), "--format", "json")
        first = run_cli("check", str(path), *args, "--format", "json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout) == json.loads(first.stdout)
        plain_tables = [
            run_cli("check", str(p), *a).stdout.splitlines()[1:] for p, a in ((out, []), (path, args))
        ]
        assert plain_tables[0] == plain_tables[1]


@pytest.mark.parametrize(
    "spec", sorted((Path(__file__).parents[1] / "specs").glob("*.*")), ids=lambda p: p.name
)
def test_expand_of_every_zoo_spec_checks_the_same(tmp_path: Path, spec: Path) -> None:
    text = run_cli("expand", str(spec))
    assert text.returncode == 0, text.stderr
    out = write(tmp_path, text.stdout, "x.yaml")
    assert load_spec(out).to_data() == load_spec(spec).to_data()


def test_literal_dollars_survive_expand(tmp_path: Path) -> None:
    path = write(tmp_path, "name: d\ndescription: costs $$5 and $(1 + 1) cents\ninput: [4]\nlayers: [ReLU]\n")
    assert load_spec(path).description == "costs $5 and 2 cents"
    out = write(tmp_path, run_cli("expand", str(path)).stdout, "x.yaml")
    assert load_spec(out).description == "costs $5 and 2 cents"


TRAINED = """\
name: blocks_run
input: [1, 4, 8, 8]
vars: {width: 4, lr: 0.05}
variants:
  wide: {width: 6}
blocks:
  unit:
    params: {channels: int}
    layers:
      - {name: conv, type: Conv3d, out_channels: $channels, kernel_size: 3, padding: 1}
      - ReLU
layers:
  - {name: body, type: unit, channels: $width, repeat: 2}
  - {type: AdaptiveAvgPool3d, output_size: 1}
  - Flatten
  - {name: head, type: Linear, out_features: 4}
train:
  data: {source: synthetic-motion, samples: 32}
  batch_size: 16
  epochs: 1
  optimizer: {type: SGD, lr: $lr}
  output_dir: runs/b
"""


def test_train_and_eval_take_variant_and_record_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands' own entry point in this process (a fresh interpreter per command would only add
    # torch's import), from tmp_path: the spec's relative output_dir lands there.
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, TRAINED)
    result = cli("train", str(path), "--variant", "wide", "--set", "vars.lr=0.01", "--quiet")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "b"
    ckpt = torch.load(out / "last.ckpt", weights_only=True)
    assert ckpt["variant"] == "wide" and json.loads(ckpt["overrides"]) == ["vars.lr=0.01"]
    stored = ckpt["spec"]  # a mapping: load_spec and build take it as it is
    assert "vars" not in stored and stored["train"]["optimizer"]["lr"] == 0.01
    model = torchspec.load_model(out / "model.safetensors")
    assert model.state_dict()["body.1.conv.weight"].shape == (6, 6, 3, 3, 3)  # the variant's width
    ev = cli("eval", str(path), "--checkpoint", str(out / "last.ckpt"), "--variant", "wide")
    assert ev.returncode == 0, ev.stderr
    wrong = cli("eval", str(path), "--checkpoint", str(out / "last.ckpt"))
    assert wrong.returncode == 1 and "does not match the spec" in wrong.stderr  # width 4 is another net


def test_bare_block_name_and_mapping_source() -> None:
    data = {
        "name": "m",
        "input": [4],
        "blocks": {"act": {"layers": ["ReLU", {"type": "Linear", "out_features": 4}]}},
        "layers": ["act", {"type": "act", "repeat": 2}],
    }
    model = torchspec.build(data)
    assert [n for n, _ in model.named_children()] == ["0", "1", "2"]
    assert list(model.state_dict()) == [
        "0.1.weight",
        "0.1.bias",
        "1.1.weight",
        "1.1.bias",
        "2.1.weight",
        "2.1.bias",
    ]
    with pytest.raises(SpecError) as info:
        load_spec({**data, "layers": [{"type": "act", "size": 3}]})
    (problem,) = info.value.problems
    assert problem.line == 0 and "block 'act' (layers[0]) has no parameter 'size'" in problem.message


# -- a block's own vars ---------------------------------------------------------------------------

BLOCK_VARS = """\
name: v
input: [3, 8, 8]
vars: {scale: 2}
blocks:
  expand:
    params: {inp: int, t: int}
    vars:
      hidden: $(inp * t * scale)        # parameters and the spec's vars
      half: $(hidden // 2)              # the vars above it
      scale: 1                          # shadows the spec's var from here on
    layers:
      - {type: Conv2d, out_channels: $hidden, kernel_size: 1}
      - {type: Conv2d, out_channels: $(half * scale), kernel_size: 1}
layers:
  - {type: expand, inp: 3, t: 2}
  - {type: expand, inp: $(half_of_nothing), t: 1, when: false}
  - {type: expand, inp: 6, t: $(index + 1), repeat: 2}
"""


def test_block_vars_are_computed_for_each_use_in_order() -> None:
    layers = expanded(BLOCK_VARS)["layers"]
    widths = [[conv["out_channels"] for conv in use["layers"]] for use in layers]
    # inp * t * 2, then half of it (scale is 1 inside after the block's own `scale`)
    assert widths == [[12, 6], [12, 6], [24, 12]]  # the repeat's t is 1, then 2
    model = torchspec.build(yaml.safe_load(BLOCK_VARS))
    assert [tuple(p.shape[:2]) for name, p in model.named_parameters() if name.endswith("weight")] == [
        (12, 3), (6, 12), (12, 6), (6, 12), (24, 6), (12, 24),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("vars_text", "line", "col", "message"),
    [
        ("{hidden: $(inp * tt)}", 7, 28, "unknown variable 'tt'"),  # located in the block, noted at the use
        ("{inp: 3}", 7, 12, "variable 'inp' has the name of a parameter of block 'b'"),
        ("{index: 3}", 7, 12, "variable 'index' is reserved"),
        ("{cfg: {a: 1}}", 7, 17, "variable 'cfg' holds a mapping"),
        ("[1, 2]", 7, 11, "a block's vars must be a mapping"),
    ],
)
def test_block_var_mistakes_are_located(vars_text: str, line: int, col: int, message: str) -> None:
    text = f"""\
name: v
input: [4]
blocks:
  b:
    params: {{inp: int, t: int}}
    layers: [{{type: Linear, out_features: $inp}}]
    vars: {vars_text}
layers:
  - {{type: b, inp: 3, t: 2}}
"""
    with pytest.raises(SpecError) as info:
        expanded(text)
    (problem,) = info.value.problems
    assert message in problem.message
    assert (problem.line, problem.col) == (line, col)
    if "unknown variable" in message:
        assert [(n.line, n.message[:20]) for n in problem.notes] == [(9, "in block 'b' used he")]
