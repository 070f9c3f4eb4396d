"""The registry is the catalogue: every torch.nn layer class of the installed torch is registered or
excluded with a reason (torchspec/catalogue.py), README lists exactly the registry and the
exclusions, excluded classes get their reason as a located error, and a max pool's indices reach
MaxUnpool through the wiring."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchspec
from torchspec.catalogue import EXCLUDED, excluded
from torchspec.errors import SpecError
from torchspec.layers import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def torch_nn_classes() -> list[str]:
    """Every nn.Module subclass torch.nn exports (its public names)."""
    return sorted(
        name
        for name, value in vars(torch.nn).items()
        if not name.startswith("_") and inspect.isclass(value) and issubclass(value, torch.nn.Module)
    )


def test_every_torch_nn_class_is_registered_or_excluded() -> None:
    classes = torch_nn_classes()
    assert len(classes) > 150, classes  # the enumeration is real: torch 2.x exports ~160
    missing = [n for n in classes if n not in REGISTRY and excluded(n, REGISTRY) is None]
    assert not missing, (
        f"torch.nn classes neither registered nor excluded: {missing}; register each in "
        f"torchspec/layers/<family>.py or add it to torchspec/catalogue.py with its reason"
    )
    # and nothing is both, or excluded for a class torch.nn does not have
    assert not [n for n in classes if n in REGISTRY and excluded(n, REGISTRY)]
    assert not set(EXCLUDED) - set(classes), "stale exclusions"


def test_lazy_classes_each_have_a_registered_eager_class() -> None:
    lazy = [n for n in torch_nn_classes() if n.startswith("Lazy")]
    assert len(lazy) >= 10
    for name in lazy:
        assert name[4:] in REGISTRY, name
        _, instead = excluded(name, REGISTRY)  # type: ignore[misc]
        assert instead == name[4:]


def _section(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", text, re.S)
    assert match, f"README.md has no <!-- {marker} --> section"
    return match.group(1)


def _names(item: str) -> list[str]:
    """``Conv1d/2d/3d`` -> Conv1d, Conv2d, Conv3d; other words are names as written."""
    head, *more = item.split("/")
    names = [head]
    stem = re.sub(r"\dd$", "", head)
    names += [stem + suffix for suffix in more]
    return names


def readme_layers() -> list[str]:
    names: list[str] = []
    for line in _section("layers").replace("\n  ", " ").splitlines():
        _, _, listed = line.partition(": ")
        listed = re.sub(r"\([^)]*\)", "", listed)  # remarks in parentheses
        for item in listed.split(","):
            names += _names(item.strip())
    return names


def test_readme_lists_exactly_the_registry() -> None:
    listed = readme_layers()
    assert len(listed) == len(set(listed)), "a layer listed twice"
    assert set(listed) - set(REGISTRY) == set(), "README lists layers the registry lacks"
    assert set(REGISTRY) - set(listed) == set(), "registered layers missing from README's list"


def test_readme_lists_every_exclusion() -> None:
    text = _section("not-layers")
    for name in EXCLUDED:
        assert re.search(rf"\b{name}\b", text), name
    for pattern in ("`Lazy*`", "`*Loss`", "NLLLoss2d"):
        assert pattern in text


def _check_error(tmp_path: Path, layer: str) -> SpecError:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: t\ninput: [3, 8, 8]\nlayers:\n  - {layer}\n  - Flatten\n")
    with pytest.raises(SpecError) as info:
        torchspec.load_spec(path)
    return info.value


@pytest.mark.parametrize("name", [n for n in torch_nn_classes() if n.startswith("Lazy")])
def test_lazy_class_error_names_the_class_to_use(tmp_path: Path, name: str) -> None:
    (problem,) = _check_error(tmp_path, f"{{type: {name}}}").problems
    eager = name[4:]
    fields = REGISTRY[eager].model_fields
    inferred = next(f for f in ("in_features", "in_channels", "num_features") if f in fields)
    assert (problem.line, problem.col) == (4, 12)  # at the type name
    assert f"'{name}' is not a spec layer: torchspec infers {inferred} from the incoming" in problem.message
    assert problem.hints == (f"did you mean '{eager}'? (leave {inferred} out)",)


@pytest.mark.parametrize(
    "name", [n for n in torch_nn_classes() if n not in REGISTRY and not n.startswith("Lazy") and excluded(n)]
)
def test_excluded_class_error_says_why_and_what_instead(tmp_path: Path, name: str) -> None:
    (problem,) = _check_error(tmp_path, name).problems
    why, instead = excluded(name)  # type: ignore[misc]
    assert (problem.line, problem.col) == (4, 5)
    assert problem.message.endswith(f"'{name}' is not a spec layer: torch.nn.{name} is {why}")
    assert problem.hints == (f"use {instead}",)


def test_lazy_error_from_the_cli_inside_a_block_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\ninput: [64]\nblocks:\n  act: {layers: [ReLU]}\nlayers:\n"
        "  - {type: LazyLinear, out_features: 8}\n  - act\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "torchspec", "check", str(spec)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"{spec}:6:12: error: 'LazyLinear' is not a spec layer: torchspec infers in_features" in run.stderr
    assert "hint: did you mean 'Linear'? (leave in_features out)" in run.stderr


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_pool_indices_reach_max_unpool_through_the_wiring(rank: int) -> None:
    """A return_indices pool's (output, indices) tuple: the output goes on, ``pool.1`` feeds
    MaxUnpool; the compiled model equals torch's own pool -> conv -> unpool."""
    dims = {1: "1d", 2: "2d", 3: "3d"}[rank]
    sample = [2, *[6] * rank]
    spec = {
        "name": "unpool",
        "input": sample,
        "layers": [
            {"name": "pool", "type": f"MaxPool{dims}", "kernel_size": 2, "return_indices": True},
            {"name": "conv", "type": f"Conv{dims}", "out_channels": 2, "kernel_size": 1},
            {"name": "unpool", "type": f"MaxUnpool{dims}", "kernel_size": 2, "from": ["conv", "pool.1"]},
        ],
    }
    report = torchspec.infer_shapes(spec, batch=3)
    assert report.output == (3, *sample)
    model = torchspec.build(spec, seed=0).eval()
    x = torch.randn(3, *sample)
    pooled, indices = getattr(torch.nn, f"MaxPool{dims}")(2, return_indices=True)(x)
    expected = getattr(torch.nn, f"MaxUnpool{dims}")(2)(model.conv(pooled), indices)
    assert torch.equal(model(x), expected)


def test_max_unpool_refuses_indices_of_another_shape() -> None:
    spec = {
        "name": "unpool",
        "input": [2, 8, 8],
        "layers": [
            {"name": "pool", "type": "MaxPool2d", "kernel_size": 2, "return_indices": True},
            {"name": "smaller", "type": "MaxPool2d", "kernel_size": 2, "from": "pool"},
            {"type": "MaxUnpool2d", "kernel_size": 2, "from": ["smaller", "pool.1"]},
        ],
    }
    with pytest.raises(SpecError, match=r"the indices \[N, 2, 4, 4\] .* must have the shape of the values"):
        torchspec.infer_shapes(spec)


def test_lazy_registry_index_matches_the_registrations() -> None:
    """The registry knows every name before importing its family (a scan of the ``type:``
    declarations); once all are imported, each name is registered by the module it was indexed to."""
    from torchspec.layers import FAMILIES, load_all

    code = (
        "import sys, torchspec.layers as L\n"
        "where = dict(L.REGISTRY._where)\n"
        "L.load_all()\n"
        "print(len(where), sorted(n for n in L.REGISTRY._classes if n not in where))\n"
        "print(sorted(n for n, c in L.REGISTRY._classes.items() if c.__module__ != where.get(n)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, unindexed = run.stdout.splitlines()[0].split(" ", 1)
    assert unindexed == "[]", "registered but not found by the index scan"
    assert run.stdout.splitlines()[1] == "[]", "indexed to another module than the one registering it"
    load_all()
    assert int(count) == len(REGISTRY) and len(FAMILIES) >= 10


def test_check_builds_only_the_families_a_spec_uses() -> None:
    code = (
        "import json, sys, torchspec\n"
        "torchspec.infer_shapes('specs/lenet5.yaml')\n"
        "print(json.dumps([m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('torchspec.layers.')]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(json.loads(run.stdout))
    assert {"conv", "pool", "activation", "reshape", "linear"} <= loaded
    assert not loaded & {"padding", "pool_other", "rearrange", "recurrent", "attention", "dropout"}
