"""A spec exported as Python (``torchspec export --to python``) and imported back
(``torchspec import``) is the same model: the exported module's class is found by its state_dict
keys, imported with the command, and the re-imported spec loads the original's weights strictly
and computes the same outputs as the original and as the exported module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from conftest import cli
from torch import nn

import torchspec

pytest.importorskip("torchspec.export.python")
from torchspec.export import export

SPECS = Path(__file__).resolve().parent.parent / "specs"
# residual adds, skip concatenations, attention, an LSTM's h_n (Select), Fire blocks, and ConvNeXt,
# whose exported file defines its own LayerNorm2d, Permute and StochasticDepth (smaller input)
CASES: list[tuple[str, list[str]]] = [
    ("resnet_cifar.yaml", []),
    ("unet2d.yaml", []),
    ("self_attention.yaml", []),
    ("lstm_classifier.yaml", []),
    ("squeezenet.yaml", ["input=[3, 64, 64]"]),
    ("convnext.yaml", ["input=[3, 32, 32]"]),
]


def _keys(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize(("spec", "sets"), CASES, ids=[c[0] for c in CASES])
def test_exported_python_imports_back(
    spec: str, sets: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stem = f"exported_{Path(spec).stem}"
    out = tmp_path / f"{stem}.py"
    export(SPECS / spec, "python", out, overrides=sets)
    original = torchspec.build(SPECS / spec, seed=0, overrides=sets).eval()
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(stem)
    monkeypatch.delitem(__import__("sys").modules, stem)
    classes = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == stem
    ]
    factory = next(name for name in classes if _try_keys(getattr(module, name)) == _keys(original))
    sample = torchspec.load_spec(SPECS / spec, overrides=sets).input_shape
    again_path = tmp_path / "again.yaml"
    done = cli("import", f"{stem}:{factory}", "--input", ",".join(map(str, sample)), "-o", str(again_path))
    assert done.returncode == 0, done.stderr
    again = torchspec.build(again_path).eval()
    exported = getattr(module, factory)().eval()
    for model in (again, exported):
        model.load_state_dict(original.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, *sample)
    with torch.no_grad():
        want = original(x)
        torch.testing.assert_close(exported(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(again(x), want, rtol=1e-5, atol=1e-5)


def _try_keys(cls: type[nn.Module]) -> dict[str, tuple[int, ...]] | None:
    try:
        return _keys(cls())
    except TypeError:  # a block class: it takes constructor parameters
        return None
