"""Metrics: top-5 accuracy, per-class accuracy, macro-F1 and the confusion matrix (checked against
scikit-learn), MAE/RMSE for regression; in metrics.csv and in eval's table and JSON; eval on a
separate test set in one flag (--data) or a train.test source."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, write_spec

import torchspec
from torchspec.training.metrics import Tally

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("classes", [2, 3, 7, 12])
def test_classification_metrics_agree_with_sklearn(seed: int, classes: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    batches = [
        (torch.randn(n, classes, generator=gen), torch.randint(0, classes, (n,), generator=gen))
        for n in (5, 9, 1)
    ]
    tally = Tally("CrossEntropyLoss", -100)
    for out, y in batches:
        tally.add(out, y)
    found = tally.result()
    logits = torch.cat([b[0] for b in batches]).numpy()
    labels = torch.cat([b[1] for b in batches]).numpy()
    predicted = logits.argmax(1)
    every = list(range(classes))
    assert found["confusion"] == sklearn_metrics.confusion_matrix(labels, predicted, labels=every).tolist()
    present = sorted(set(labels) | set(predicted))
    f1 = sklearn_metrics.f1_score(labels, predicted, labels=present, average="macro", zero_division=0)
    assert math.isclose(found["macro_f1"], f1, abs_tol=1e-12)
    recall = sklearn_metrics.recall_score(labels, predicted, labels=every, average=None, zero_division=0)
    for c in every:
        if c in labels:
            assert math.isclose(found["per_class_accuracy"][c], recall[c], abs_tol=1e-12)
        else:
            assert found["per_class_accuracy"][c] is None
    if classes > 5:
        top5 = sklearn_metrics.top_k_accuracy_score(labels, logits, k=5, labels=every)
        assert math.isclose(found["top5_accuracy"], top5, abs_tol=1e-12)
    else:
        assert "top5_accuracy" not in found


def test_per_position_outputs_and_ignore_index_count_each_position() -> None:
    out = torch.randn(2, 4, 3)  # (N, C, L): a label per position
    y = torch.tensor([[0, 1, -100], [3, 3, 2]])
    tally = Tally("CrossEntropyLoss", -100)
    tally.add(out, y)
    keep = y.reshape(-1) != -100
    pred = out.movedim(1, -1).reshape(-1, 4).argmax(1)[keep]
    assert sum(map(sum, tally.result()["confusion"])) == 5
    expected = sklearn_metrics.confusion_matrix(y.reshape(-1)[keep], pred, labels=range(4)).tolist()
    assert tally.result()["confusion"] == expected


def test_regression_metrics_are_mae_and_rmse() -> None:
    gen = torch.Generator().manual_seed(0)
    outs, ys = torch.randn(10, 3, generator=gen), torch.randn(10, 3, generator=gen)
    tally = Tally("MSELoss")
    tally.add(outs[:4], ys[:4])
    tally.add(outs[4:], ys[4:])
    found = tally.result()
    assert math.isclose(found["mae"], sklearn_metrics.mean_absolute_error(ys, outs), rel_tol=1e-6)
    assert math.isclose(found["rmse"], math.sqrt(sklearn_metrics.mean_squared_error(ys, outs)), rel_tol=1e-6)
    assert "confusion" not in found and "macro_f1" not in found


SPEC = """\
name: scored
input: [6]
layers:
  - {type: Linear, out_features: 16}
  - ReLU
  - {type: Linear, out_features: OUT_FEATURES}
train:
  data: {source: tensors, inputs: train.npz}
  batch_size: 8
  epochs: 2
  optimizer: {type: Adam, lr: 0.01}
  output_dir: OUT
"""


def _arrays(folder: Path, name: str, n: int, regression: bool) -> None:
    rng = np.random.default_rng(len(name) + n)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = rng.normal(size=(n, 2)).astype(np.float32) if regression else rng.integers(0, 7, n)
    np.savez(folder / name, x=x, y=y)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_metrics_csv_and_eval_agree(tmp_path: Path, task: str) -> None:
    regression = task == "regression"
    _arrays(tmp_path, "train.npz", 64, regression)
    text = SPEC.replace("OUT_FEATURES", "2" if regression else "7")
    text += "  loss: MSELoss\n  monitor: val_rmse\n" if regression else "  monitor: val_macro_f1\n"
    spec = write_spec(tmp_path, text)
    torchspec.train(spec, quiet=True)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    names = ["val_mae", "val_rmse"] if regression else ["val_top5_accuracy", "val_macro_f1"]
    for name in names:
        assert all(row[name] for row in rows), name
    # a column per class (empty for a class absent from the validation split)
    names += [] if regression else [f"val_accuracy_class_{c}" for c in range(7)]
    assert set(names) <= set(rows[0])
    result = cli("eval", str(spec), "--checkpoint", str(tmp_path / "run" / "last.ckpt"), "--format", "json")
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    for name in names:
        key = name.removeprefix("val_")
        value = scored["per_class_accuracy"][int(key.rsplit("_", 1)[1])] if "class_" in key else scored[key]
        if value is None:  # a class absent from the split: an empty cell
            assert rows[-1][name] == "", name
            continue
        assert math.isclose(float(rows[-1][name]), value, rel_tol=1e-5, abs_tol=1e-6), name
    table = cli("eval", str(spec), "--checkpoint", str(tmp_path / "run" / "last.ckpt"))
    for label in ["MAE:", "RMSE:"] if regression else ["top-5 accuracy:", "macro-F1:", "confusion (rows"]:
        assert label in table.stdout


def test_eval_scores_a_separate_test_set_in_one_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _arrays(tmp_path, "train.npz", 64, False)
    (tmp_path / "sets").mkdir()
    _arrays(tmp_path / "sets", "test.npz", 30, False)
    spec = write_spec(tmp_path, SPEC.replace("OUT_FEATURES", "7"))
    torchspec.train(spec, quiet=True)
    weights = str(tmp_path / "run" / "model.safetensors")
    monkeypatch.chdir(tmp_path / "sets")  # --data is a command-line path: relative to the cwd
    flag = cli("eval", str(spec), "--checkpoint", weights, "--data", "test.npz", "--format", "json")
    assert flag.returncode == 0, flag.stderr
    by_flag = json.loads(flag.stdout)
    assert by_flag["split"] == "test" and by_flag["samples"] == 30
    # the same set as a train.test source in the spec (relative to the spec's folder)
    in_spec = write_spec(
        tmp_path,
        SPEC.replace("OUT_FEATURES", "7") + "  test: {source: tensors, inputs: sets/test.npz}\n",
        "tested",
    )
    source = cli("eval", str(in_spec), "--checkpoint", weights, "--format", "json")
    assert source.returncode == 0, source.stderr
    assert json.loads(source.stdout) == by_flag
    missing = cli("eval", str(spec), "--checkpoint", weights, "--data", "nope.npz")
    assert missing.returncode == 1 and "nope.npz does not exist" in missing.stderr


@pytest.mark.parametrize(
    ("loss", "monitor"),
    [("MSELoss", "val_accuracy"), ("MSELoss", "val_macro_f1"), ("CrossEntropyLoss", "val_rmse")],
)
def test_a_monitor_the_task_has_no_metric_for_is_refused_at_check(
    tmp_path: Path, loss: str, monitor: str
) -> None:
    spec = write_spec(tmp_path, SPEC.replace("OUT_FEATURES", "2") + f"  loss: {loss}\n  monitor: {monitor}\n")
    result = cli("check", str(spec))
    assert result.returncode == 1 and f"monitor: {monitor}" in result.stderr
