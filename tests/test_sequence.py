"""Recurrent, attention and two-input layers inside specs: tuple outputs taken by reference,
batch_first in the shapes, located errors for inputs that disagree, and an LSTM that learns.

The per-layer numbers (every shape of every tuple, parameters, MACs) are the registry-wide truth
sweep's job (tests/test_truth.py); these tests go through whole specs, the CLI and the builder.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import torchspec
from torchspec.builder import build
from torchspec.layers import TupleOut

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run(spec: dict[str, Any], batch: int = 3) -> tuple[torchspec.ShapeReport, torch.Tensor]:
    report = torchspec.infer_shapes(spec, batch=batch)
    model = build(spec, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(report.input))
    return report, out


# Every element of every recurrent layer's tuple, read by reference (`from: rnn.1`, `rnn.1.1`),
# with both batch layouts: the spec's inferred output equals torch's real one.
STATES = {"RNN": ["1"], "GRU": ["1"], "LSTM": ["1.0", "1.1"]}
CASES = [
    (kind, element, batch_first, extra)
    for kind, elements in STATES.items()
    for element in ["0", *elements]
    for batch_first in (True, False)
    for extra in ({}, {"num_layers": 2, "bidirectional": True})
]


@pytest.mark.parametrize(("kind", "element", "batch_first", "extra"), CASES)
def test_every_tuple_element_has_torchs_shape(
    kind: str, element: str, batch_first: bool, extra: dict[str, Any]
) -> None:
    spec = {
        "name": "rnn",
        "input": [5, 4],  # (T, F) per sample: with batch_first false torch reads dim 0 as time
        "layers": [
            {"name": "rnn", "type": kind, "hidden_size": 6, "batch_first": batch_first, **extra},
            {"type": "Flatten", "from": f"rnn.{element}"},
        ],
    }
    report, out = _run(spec, batch=3)
    assert tuple(out.shape) == report.output  # torch's real output, through the reference
    d, layers = (2, 2) if extra else (1, 1)
    assert report.rows[0].output == (3, 5, d * 6)  # the output sequence keeps the layout it reads
    # h_n is [D * num_layers, batch, H]; with batch_first false torch takes dim 1 (T = 5) as the
    # batch and the spec's batch (3) as time: why a spec's [T, F] sequences need batch_first true
    batch = 3 if batch_first else 5
    assert report.rows[1].input == ((3, 5, d * 6) if element == "0" else (d * layers, batch, 6))


def test_lstm_proj_size_shapes_the_output_and_h_n_not_c_n() -> None:
    spec = {
        "name": "proj",
        "input": [7, 3],
        "layers": [
            {"name": "lstm", "type": "LSTM", "hidden_size": 8, "proj_size": 2, "batch_first": True},
            {"name": "c", "type": "Identity", "from": "lstm.1.1"},
        ],
    }
    report, out = _run(spec)
    states = TupleOut(((1, 3, 2), (1, 3, 8)))  # h_n has proj_size features, c_n hidden_size
    assert report.rows[0].out == TupleOut(((3, 7, 2), states))
    assert tuple(out.shape) == (1, 3, 8) == report.output


@pytest.mark.parametrize("inputs", [["x", "x", "x"], ["x", "m", "m"], ["m", "x", "x"]])
def test_multihead_attention_reads_query_key_value(inputs: list[str]) -> None:
    spec = {
        "name": "mha",
        "input": [6, 8],
        "layers": [
            {"name": "x", "type": "Linear", "out_features": 8},
            {"name": "m", "type": "Linear", "out_features": 8, "from": "input"},
            {"name": "attn", "type": "MultiheadAttention", "num_heads": 2, "batch_first": True}
            | {"from": inputs},
            {"type": "Identity", "from": "attn.1"},  # the weights [N, L, S]
        ],
    }
    report, out = _run(spec)
    assert tuple(out.shape) == report.output == (3, 6, 6)


@pytest.mark.parametrize("inputs", [None, ["input", "m"]])
def test_multihead_attention_with_one_or_two_inputs(inputs: list[str] | None) -> None:
    spec = {
        "name": "short",
        "input": [6, 8],
        "layers": [
            {"name": "m", "type": "Linear", "out_features": 3},  # keys/values of another width
            {"type": "MultiheadAttention", "num_heads": 2, "batch_first": True}
            | ({"from": inputs} if inputs else {"from": "input"}),
        ],
    }
    report, out = _run(spec)
    assert tuple(out.shape) == report.output == (3, 6, 8)


# Inputs that disagree: a located error naming each input and where it came from, exit 1.
BAD = {
    "bilinear": (
        "{type: Bilinear, out_features: 3, from: [a, flat]}",
        "Bilinear (layers[2]): input1 [N, 6, 8] (a: after Linear at layers[0]) and input2 [N, 24] "
        "(flat: after Flatten at layers[1]) must have the same dimensions but the last",
    ),
    "decoder memory width": (
        "{type: TransformerDecoderLayer, nhead: 2, from: [a, input]}",
        "the memory [N, 6, 4] (input: the spec's input) must have d_model=8 features, like the "
        "target [N, 6, 8] (a: after Linear at layers[0]), but has 4",
    ),
    "attention kdim": (
        "{type: MultiheadAttention, num_heads: 2, kdim: 5, batch_first: true, from: [a, input, input]}",
        "kdim is 5 but the key [N, 6, 4] (input: the spec's input) has 4 features; "
        "set kdim: 4 or leave it out",
    ),
    "attention key batch": (
        "{type: MultiheadAttention, num_heads: 2, from: [a, flat, flat]}",
        "must be a batch of sequences, rank 3",
    ),
    "cosine broadcast": (
        "{type: CosineSimilarity, from: [a, flat]}",
        "cannot broadcast [N, 6, 8] (a: after Linear at layers[0]) with [N, 24] (flat: after Flatten",
    ),
    "heads divide": (
        "{type: TransformerEncoderLayer, nhead: 3, from: a}",
        "nhead=3 must divide d_model=8",
    ),
    "input_size": (
        "{type: GRU, input_size: 5, batch_first: true, hidden_size: 2, from: a}",
        "input_size is 5 but the incoming shape is [N, 6, 8] (a: after Linear at layers[0]); "
        "set input_size: 8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_inputs_that_disagree_are_located_errors(tmp_path: Path, case: str) -> None:
    layer, message = BAD[case]
    text = (
        "name: bad\ninput: [6, 4]\nlayers:\n"
        "  - {name: a, type: Linear, out_features: 8}\n"
        "  - {name: flat, type: Flatten, from: input}\n"
        f"  - {layer}\n"
    )
    (tmp_path / "bad.yaml").write_text(text)
    proc = _cli("check", str(tmp_path / "bad.yaml"))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{tmp_path / 'bad.yaml'}:6:"), proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_lstm_classifier_learns_a_temporal_task(tmp_path: Path) -> None:
    """The zoo's LSTM classifier, smaller, on sequences whose class is *when* a pulse happens
    (first or second half): no single step tells, the recurrence must carry it. >= 90% val."""
    rng = np.random.default_rng(0)
    n, steps, features = 768, 8, 4
    x = rng.normal(size=(n, steps, features)).astype(np.float32)
    pulse = rng.integers(0, steps, n)
    x[np.arange(n), pulse, 0] += 4.0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (pulse >= steps // 2).astype(np.int64))
    spec = yaml.safe_load((ROOT / "specs" / "lstm_classifier.yaml").read_text())
    spec["input"] = [steps, features]
    lstm = spec["layers"][0]
    assert lstm["type"] == "LSTM" and lstm["batch_first"] is True
    lstm.update(hidden_size=16, num_layers=1)
    del lstm["dropout"]
    spec["layers"][-1]["out_features"] = 2
    train = spec["train"]
    train["data"] = {"source": "tensors", "inputs": "x.npy", "targets": "y.npy", "val_fraction": 0.25}
    train.update(epochs=3, output_dir="run")
    train["optimizer"]["lr"] = 0.01
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    proc = _cli("train", "spec.yaml", "--quiet", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(rows[-1]["val_accuracy"]) >= 0.9, rows
    rebuilt = torchspec.load_model(tmp_path / "run" / "model.safetensors")
    with torch.no_grad():
        assert tuple(rebuilt(torch.from_numpy(x[:5])).shape) == (5, 2)
