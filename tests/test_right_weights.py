"""The right weights in the documented place: model.safetensors holds the best epoch's weights by
the monitored metric, last.ckpt the last ones; load_model takes either file, in eval() mode, and
gives back its spec; a checkpoint's embedded spec is a spec (load_spec and build take it)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import write_spec

import torchspec
from torchspec.builder import read_safetensors

# Random labels and a large learning rate: the validation loss is best early, then climbs.
OVERFIT = """\
name: overfit
input: [6]
layers:
  - {name: hidden, type: Linear, out_features: 32}
  - {type: BatchNorm1d}
  - ReLU
  - {type: Dropout, p: 0.3}
  - {name: head, type: Linear, out_features: 3}
train:
  data: {source: random, samples: 64, classes: 3, val_fraction: 0.25}
  batch_size: 8
  epochs: 5
  optimizer: {type: Adam, lr: 0.05}
  monitor: MONITOR
  output_dir: OUT
"""


@pytest.fixture(scope="module", params=["val_loss", "val_accuracy"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("weights")
    monitor = request.param
    spec = write_spec(root, OVERFIT.replace("MONITOR", monitor))
    from torchspec.training.console import Reporter

    lines: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.warn = lines.append  # type: ignore[method-assign]
    torchspec.train(spec, reporter=reporter)
    return root / "run", monitor, lines[-1]


def _best_epoch(run: Path, monitor: str) -> int:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    values = [float(row[monitor]) for row in rows]
    best = max(values) if monitor == "val_accuracy" else min(values)
    return int(rows[values.index(best)]["epoch"])  # the first epoch that reached it


def test_model_safetensors_holds_the_best_epoch_and_last_ckpt_the_last(run: tuple[Path, str, str]) -> None:
    folder, monitor, done = run
    best_epoch = _best_epoch(folder, monitor)
    assert best_epoch < 5  # the case that tells best from last
    weights = read_safetensors(folder / "model.safetensors")[1]
    best = torch.load(folder / "best.ckpt", weights_only=True)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert best["epoch"] == best_epoch and last["epoch"] == 5
    assert weights.keys() == best["model"].keys()
    assert all(torch.equal(weights[k], best["model"][k]) for k in weights)
    assert not all(torch.equal(weights[k], last["model"][k]) for k in weights)
    assert f"model.safetensors: best {monitor} " in done and f"(epoch {best_epoch})" in done
    assert "last.ckpt: last epoch (5)" in done


@pytest.mark.parametrize("name", ["model.safetensors", "best.ckpt", "last.ckpt"])
def test_load_model_takes_every_file_in_eval_mode(run: tuple[Path, str, str], name: str) -> None:
    folder = run[0]
    model, spec = torchspec.load_model(folder / name, with_spec=True)
    assert not model.training and not any(m.training for m in model.modules())
    assert spec.name == "overfit" and spec.train is not None
    assert torchspec.infer_shapes(spec).state_shapes() == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }
    x = torch.randn(4, 6)
    # eval mode: Dropout off, so two calls agree; the same weights as read from the file
    assert torch.equal(model(x), model(x))
    plain = torchspec.load_model(folder / name)
    assert isinstance(plain, torch.nn.Module) and torch.equal(plain(x), model(x))
    if name == "best.ckpt":  # best.ckpt and model.safetensors: the same weights, the same outputs
        assert torch.equal(torchspec.load_model(folder / "model.safetensors")(x), model(x))


@pytest.mark.parametrize("name", ["best.ckpt", "last.ckpt"])
def test_a_checkpoints_spec_is_a_spec(run: tuple[Path, str, str], name: str) -> None:
    ckpt = torch.load(run[0] / name, weights_only=True)
    spec = torchspec.load_spec(ckpt["spec"])  # a mapping, never a path
    model = torchspec.build(ckpt["spec"])
    model.load_state_dict(ckpt["model"])  # the same architecture, every key
    assert spec.name == "overfit" and spec.train is not None
