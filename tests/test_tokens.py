"""Inputs that are not float images: token ids through check, build, bench, train and predict;
the dtype rule's located errors; the synthetic-sequence task; the token and CNN+LSTM zoo specs.

Per-layer numbers (Embedding, EmbeddingBag, the Transformer stacks, PositionalEncoding) are the
truth sweep's (tests/test_truth.py); these tests go through whole specs and the CLI.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, process, write_spec

from torchspec.training.sequence_data import synthetic_sequence

ROOT = Path(__file__).resolve().parents[1]
TOKENS = "input: {shape: [12], dtype: int64, high: 20}\n"
EMBED = "  - {type: Embedding, num_embeddings: 20, embedding_dim: 8}\n"

# Each mistake: the spec text, where the error points (line, col) and what the message says.
BAD = {
    "float layer on token ids": (
        f"name: m\n{TOKENS}layers:\n  - Flatten\n  - {{type: Linear, out_features: 2}}\n",
        (5, 5),
        "Linear (layers[1]): computes on floats, but reads int64 token ids [N, 12] (after Flatten at "
        "layers[0])",
    ),
    "conv after a view of token ids": (
        f"name: m\n{TOKENS}layers:\n  - {{type: Reshape, shape: [1, 12]}}\n"
        "  - {type: Conv1d, out_channels: 4, kernel_size: 3}\n",
        (5, 5),
        "Conv1d (layers[1]): computes on floats, but reads int64 token ids [N, 1, 12]",
    ),
    "embedding on floats": (
        f"name: m\ninput: [12]\nlayers:\n{EMBED}",
        (4, 5),
        "Embedding (layers[0]): reads integer ids (int64), but its input [N, 12] (the spec's input) "
        "is float32",
    ),
    "ids beyond the table": (
        "name: m\ninput: {shape: [12], dtype: int64, high: 50}\nlayers:\n"
        "  - {type: Embedding, num_embeddings: 20, embedding_dim: 8}\n",
        (4, 39),
        "Embedding (layers[0]): has 20 rows (ids 0 .. 19), but its input [N, 12] (the spec's input) "
        "declares ids 0 .. 49",
    ),
    "negative ids": (
        f"name: m\ninput: {{shape: [12], dtype: int64, low: -1}}\nlayers:\n{EMBED}",
        (4, 5),
        "declares ids from -1",
    ),
    "a float input with a range": (
        f"name: m\ninput: {{shape: [12], high: 5}}\nlayers:\n{EMBED}",
        (2, 8),
        "low and high declare the range of integer inputs",
    ),
    "an empty range": (
        f"name: m\ninput: {{shape: [12], dtype: int64, low: 5, high: 5}}\nlayers:\n{EMBED}",
        (2, 8),
        "high (5) must be above low (5)",
    ),
    "an unknown dtype": (
        f"name: m\ninput: {{shape: [12], dtype: int8}}\nlayers:\n{EMBED}",
        (2, 29),
        "input.dtype must be 'float32' or 'int64', found string 'int8'",
    ),
    "frames folded into the batch and left there": (
        "name: m\ninput: [2, 4, 6]\nlayers:\n  - {type: Reshape, shape: [-1, 6], include_batch: true}\n"
        "  - {type: Linear, out_features: 3}\n",
        (5, 5),
        "the model's output [8, 3] has 8 in dimension 0, but the batch is 1",
    ),
    "a named inline layer": (
        "name: m\ninput: [12, 8]\nlayers:\n  - type: TransformerEncoder\n    num_layers: 2\n"
        "    encoder_layer: {type: TransformerEncoderLayer, nhead: 2, name: x, batch_first: true}\n",
        (6, 20),
        "takes no name or from",
    ),
    "a mistake inside the inline layer": (
        "name: m\ninput: [12, 8]\nlayers:\n  - type: TransformerEncoder\n    num_layers: 2\n"
        "    encoder_layer: {type: TransformerEncoderLayer, nhead: 3, batch_first: true}\n",
        (6, 20),
        "TransformerEncoder (layers[0]): encoder_layer: nhead=3 must divide d_model=8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_dtype_and_range_mistakes_are_located(tmp_path: Path, case: str) -> None:
    text, (line, col), message = BAD[case]
    path = write_spec(tmp_path, text)
    proc = cli("check", str(path))
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith(f"{path}:{line}:{col}: error: "), proc.stderr
    assert message in proc.stderr, proc.stderr


def test_views_pass_token_ids_on_and_json_says_the_dtype(tmp_path: Path) -> None:
    """Reshape/Select/Identity keep int64 (an Embedding may read them); --format json gains
    input_dtype and input_range for token inputs only."""
    text = (
        "name: m\ninput: {shape: [2, 6], dtype: int64, high: 20}\nlayers:\n"
        "  - {type: Reshape, shape: [12]}\n  - Identity\n" + EMBED + "  - {type: Mean, dim: 1}\n"
    )
    proc = cli("check", str(write_spec(tmp_path, text)), "--format", "json", "--batch", "2")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["input"], data["input_dtype"], data["input_range"]) == ([2, 2, 6], "int64", [0, 20])
    assert data["output"] == [2, 8]
    plain = json.loads(cli("check", str(ROOT / "specs" / "mlp.json"), "--format", "json").stdout)
    assert "input_dtype" not in plain and "input_range" not in plain


@pytest.mark.parametrize("spec", ["lstm_tokens", "transformer_tokens"])
def test_token_specs_build_verify_and_bench(spec: str) -> None:
    path = str(ROOT / "specs" / f"{spec}.yaml")
    built = cli("build", path)
    assert built.returncode == 0, built.stderr
    assert "verified: a forward pass on the meta device gives [1, 2]" in built.stdout
    assert "(int64 token ids 0 .. 31)" in built.stdout
    bench = cli("bench", path, "--steps", "1", "--warmup", "0", "--batch", "4", "--format", "json")
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["batch"] == 4


def test_synthetic_sequence_is_deterministic_and_needs_order() -> None:
    """Same seed, same data; every marker exactly once within the length; the label is the marker
    that comes first; shorter sequences end in padding 0s; ids stay in the declared range."""
    x, y = synthetic_sequence([16], (0, 12), 300, classes=3, min_length=6, seed=5)
    again = synthetic_sequence([16], (0, 12), 300, classes=3, min_length=6, seed=5)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    assert not torch.equal(x, synthetic_sequence([16], (0, 12), 300, classes=3, min_length=6, seed=6)[0])
    assert x.dtype == y.dtype == torch.int64 and x.shape == (300, 16)
    assert int(x.min()) >= 0 and int(x.max()) < 12
    for row, label in zip(x.tolist(), y.tolist()):
        length = next((i for i, t in enumerate(row) if t == 0), 16)
        assert length >= 6 and all(t == 0 for t in row[length:])
        firsts = [row.index(m) for m in (1, 2, 3)]
        assert all(row.count(m) == 1 for m in (1, 2, 3)) and max(firsts) < length
        assert label == firsts.index(min(firsts))
    assert sorted(set(y.tolist())) == [0, 1, 2]  # every class occurs


@pytest.mark.parametrize(
    ("input_", "data", "message"),
    [
        ("[12]", "", "synthetic-sequence makes token ids; the spec's input is float32"),
        ("{shape: [12], dtype: int64, high: 20}", ", vocab: 30", "vocab 30 makes ids 0 .. 29"),
        ("{shape: [12], dtype: int64, high: 4}", ", classes: 3", "vocab 4 is too small for 3 classes"),
        ("{shape: [12], dtype: int64, high: 20}", ", min_length: 13", "min_length 13 must be within"),
    ],
)
def test_synthetic_sequence_settings_are_checked(
    tmp_path: Path, input_: str, data: str, message: str
) -> None:
    layers = "  - {type: Linear, out_features: 3}\n"
    if input_ != "[12]":  # token ids: embed, pool over time, then the head
        layers = EMBED + "  - {type: Mean, dim: 1}\n" + layers
    text = (
        f"name: m\ninput: {input_}\nlayers:\n{layers}"
        f"train: {{data: {{source: synthetic-sequence, samples: 64{data}}}, epochs: 1, output_dir: OUT}}\n"
    )
    proc = cli("train", str(write_spec(tmp_path, text)), "--quiet")
    assert proc.returncode == 1, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# The zoo's sequence and video specs learn their built-in tasks (the specs' own settings).
@pytest.mark.parametrize("spec", ["lstm_tokens", "transformer_tokens", "cnn_lstm_motion"])
def test_zoo_sequence_specs_reach_90_percent(tmp_path: Path, spec: str) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torchspec", "train", str(ROOT / "specs" / f"{spec}.yaml"), "--quiet",
               "--device", "cpu", "--set", f"train.output_dir={run}"]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["val_accuracy"]) >= 0.9, rows
    if spec != "lstm_tokens":
        return
    # predict on token ids the model never saw (another seed): right >= 90%; ids out of the
    # declared range and float arrays are refused naming the file
    x, y = synthetic_sequence([24], (0, 32), 200, seed=123)
    np.save(tmp_path / "ids.npy", x.numpy())
    out = process("predict", str(run / "model.safetensors"), str(tmp_path / "ids.npy"), "--format", "json")
    assert out.returncode == 0, out.stderr
    predicted = [row["top"][0]["class"] for row in json.loads(out.stdout)]
    assert np.mean(np.array(predicted) == y.numpy()) >= 0.9
    wrong = [(x.numpy() + 40, "outside the spec's input range 0 .. 31"), (x.numpy() * 0.5, "float")]
    for bad, message in wrong:
        np.save(tmp_path / "bad.npy", bad)
        refused = process("predict", str(run / "model.safetensors"), str(tmp_path / "bad.npy"))
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
