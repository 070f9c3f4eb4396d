"""`parallel: ddp` for real: two gloo processes under torchrun (`python -m torch.distributed.run`) train
a tiny CNN on the CPU. Both ranks must end bitwise identical, and equal (to float rounding) to one
process training on the same global batches: rank r's batch k is every other index of slice k of
the epoch's permutation, so the two ranks' batches of B together are the single-process batch of 2B,
and DDP's average of two mean-reduced gradients over B is the mean gradient over 2B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from conftest import write_spec
from safetensors.torch import load_file

import torchspec
from torchspec.cli import main
from torchspec.training.data import EpochSampler
from torchspec.training.parallel import RANK_WEIGHTS_ENV

# No BatchNorm (per-rank statistics) and no Dropout (per-rank RNG draws): the math is then the same.
SPEC = """\
name: tiny
input: [1, 8, 8]
layers:
  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU
  - Flatten
  - {type: Linear, out_features: 5}
train:
  data: {source: random, samples: 64, classes: 5, val_fraction: 0}
  batch_size: 8
  shuffle: true
  num_workers: 0
  epochs: 2
  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}
  seed: 1
  output_dir: OUT
"""


TESTS = Path(__file__).resolve().parent
# torchspec under torchrun with a DDP comm hook that records every gradient all-reduce (see the file)
COUNTING = [str(TESTS / "ddp_counting.py")]


def _torchrun(
    spec: Path, weights: Path, *args: str, entry: Sequence[str] = ("-m", "torchspec")
) -> subprocess.CompletedProcess[str]:
    weights.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", RANK_WEIGHTS_ENV: str(weights)}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), *filter(None, [env.get("PYTHONPATH")])])
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += [*entry, "train", str(spec), "--set", "train.parallel=ddp", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _single(spec: Path, out: Path, epochs: int, *more: str, batch: int = 16) -> list[dict[str, object]]:
    """One process, batch 16 = 2 ranks x 8, the same seed: the same global batches."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overrides = [f"train.batch_size={batch}", f"train.epochs={epochs}", f"train.output_dir={out}", *more]
        return torchspec.train(spec, overrides, quiet=True)
    finally:
        torch.set_num_threads(threads)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0:
            assert torch.equal(a[key], b[key]), f"{key} differs between the ranks"
        else:
            diff = (a[key] - b[key]).abs().max().item()
            assert diff <= atol, f"{key}: DDP and single-process weights differ by {diff}"


@pytest.mark.parametrize(("size", "shuffle"), [(64, True), (61, True), (10, False)])
def test_rank_batches_together_are_the_single_process_batches(size: int, shuffle: bool) -> None:
    batch, world = 4, 2
    single = EpochSampler(size, shuffle, seed=7)
    ranks = [EpochSampler(size, shuffle, seed=7, rank=r, world_size=world) for r in range(world)]
    for epoch in (0, 3):
        order = single.order(epoch)
        shards = [r.order(epoch) for r in ranks]
        assert all(len(s) == len(ranks[0]) == -(-size // world) for s in shards)
        padded = order + order[: len(shards[0]) * world - size]  # the tail wraps like DistributedSampler
        for k in range(len(shards[0]) // batch):
            together = sorted(i for s in shards for i in s[k * batch : (k + 1) * batch])
            assert together == sorted(padded[k * world * batch : (k + 1) * world * batch])
        # The order depends only on (seed, epoch), and a resume skips this rank's first `start` indices.
        again = EpochSampler(size, shuffle, seed=7, rank=1, world_size=world)
        again.set_epoch(epoch, start=batch)
        assert list(again) == shards[1][batch:] and len(again) == len(shards[1]) - batch
    if shuffle:
        assert ranks[0].order(0) != ranks[0].order(1)


def _last(folder: Path) -> dict[str, torch.Tensor]:
    """The last epoch's weights (last.ckpt; model.safetensors holds the best epoch's)."""
    return torch.load(folder / "last.ckpt", weights_only=True)["model"]  # type: ignore[no-any-return]


def test_two_gloo_ranks_match_one_process_and_resume(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC, "tiny", out="out")
    # Run 1: one epoch under DDP. Run 2: resume its last.ckpt on both ranks for a second epoch.
    logs = ["--set", "train.log=[csv, tensorboard]"]  # TensorBoard and curves.png: rank 0 writes them
    first = _torchrun(spec, tmp_path / "w1", "--set", "train.epochs=1", *logs)
    assert first.stdout.count("epoch 1/1") == 1  # progress and logs from rank 0 only
    assert len(os.listdir(tmp_path / "out" / "tensorboard")) == 1  # one event file: rank 0's
    assert (tmp_path / "out" / "curves.png").is_file()
    assert "cpu x 2 ranks" in first.stdout
    ckpt = tmp_path / "first.ckpt"
    (tmp_path / "out" / "last.ckpt").rename(ckpt)
    second = _torchrun(spec, tmp_path / "w2", "--resume", str(ckpt))
    assert second.stdout.count("resuming from") == 1 and "epoch 2/2" in second.stdout

    one_epoch = [load_file(str(tmp_path / "w1" / f"rank{r}.safetensors")) for r in range(2)]
    two_epochs = [load_file(str(tmp_path / "w2" / f"rank{r}.safetensors")) for r in range(2)]
    _close(*one_epoch, atol=0)
    _close(*two_epochs, atol=0)
    _close(two_epochs[0], _last(tmp_path / "out"), atol=0)  # model.safetensors holds the best epoch

    reference = _single(spec, tmp_path / "ref1", epochs=1)
    _close(one_epoch[0], load_file(str(tmp_path / "ref1" / "model.safetensors")), atol=1e-5)
    history = _single(spec, tmp_path / "ref2", epochs=2)
    _close(two_epochs[0], _last(tmp_path / "ref2"), atol=1e-5)
    assert reference[0]["step"] == 4  # 64 samples / 16 a step: the weights differ from the start
    assert not torch.equal(two_epochs[0]["3.weight"], one_epoch[0]["3.weight"])

    # The epoch's metrics are reduced over both ranks: all 64 samples, as in the single process.
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3
    for row, ref in zip(rows[1:], history):
        epoch, step, _lr, loss, accuracy = row.split(",")[:5]
        assert (int(epoch), int(step)) == (ref["epoch"], ref["step"])
        assert float(loss) == pytest.approx(ref["train_loss"], abs=1e-5)
        assert float(accuracy) == pytest.approx(ref["train_accuracy"], abs=1e-9)


def test_ddp_without_torchrun_is_an_error_at_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    spec = write_spec(tmp_path, SPEC, "tiny", out="out", extra="  parallel: ddp\n")
    assert main(["train", str(spec)]) == 1
    err = capsys.readouterr().err
    line = SPEC.count("\n") + 1
    assert f"{spec}:{line}:13: error: parallel: ddp runs one process per device under torchrun" in err
    assert f"torchrun --standalone --nproc-per-node N -m torchspec train {spec}" in err
    assert "--rdzv-endpoint" in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_dp_without_several_gpus_falls_back_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, SPEC, "tiny", out="out", extra="  parallel: dp\n")
    history = torchspec.train(spec, ["train.epochs=1", "train.device=cpu"])
    assert (
        "notice: parallel: dp needs several CUDA devices; found no CUDA device (cpu)"
        in capsys.readouterr().out
    )
    assert history[0]["step"] == 8


# The same network with a residual block wired with from: (a torch.fx GraphModule inside).
GRAPH_SPEC = SPEC.replace(
    "  - ReLU\n",
    """\
  - ReLU
  - name: res
    type: Sequential
    layers:
      - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}
      - {type: Add, from: [conv, input]}
""",
)


def _all_reduces(folder: Path, rank: int) -> dict[int, list[int]]:
    """Per gradient bucket, the DDP module's forward count at each of its all-reduces (ddp_counting)."""
    calls = json.loads((folder / f"allreduce{rank}.json").read_text())
    found: dict[int, list[int]] = {}
    for bucket, forwards in calls:
        found.setdefault(bucket, []).append(forwards)
    return found


def test_a_graph_model_trains_under_ddp_like_one_process(tmp_path: Path) -> None:
    assert GRAPH_SPEC != SPEC
    spec = write_spec(tmp_path, GRAPH_SPEC, "graph", out="out")
    _torchrun(spec, tmp_path / "w", "--set", "train.epochs=1", entry=COUNTING)
    # Without accumulation every backward all-reduces: 32 samples a rank in batches of 8.
    for rank in range(2):
        found = _all_reduces(tmp_path / "w", rank)
        assert found and all(forwards == [1, 2, 3, 4] for forwards in found.values()), found
    ranks = [load_file(str(tmp_path / "w" / f"rank{r}.safetensors")) for r in range(2)]
    assert "res.conv.weight" in ranks[0]
    _close(*ranks, atol=0)
    _single(spec, tmp_path / "ref", epochs=1)
    _close(ranks[0], load_file(str(tmp_path / "ref" / "model.safetensors")), atol=1e-5)


def test_accumulation_under_ddp_all_reduces_once_per_step(tmp_path: Path) -> None:
    """accumulate_steps: 3 under ddp: the batches before a group's last run under DDP's no_sync(),
    so each rank adds up their gradients locally and the group's last backward all-reduces the sum:
    one all-reduce per optimizer step, and the same weights as one process accumulating the same
    global batches (2 ranks x 4 = batch 8; the ranks' partial last batches of 2 make its last of 4)."""
    spec = write_spec(tmp_path, SPEC.replace("samples: 64", "samples: 60"), "tiny", out="out")
    sets = ["train.epochs=1", "train.batch_size=4", "train.accumulate_steps=3"]
    _torchrun(spec, tmp_path / "w", *(a for s in sets for a in ("--set", s)), entry=COUNTING)
    # A rank's 30 samples: 8 batches (7 of 4, one of 2) in groups of 3, 3 and 2: steps after the
    # 3rd, 6th and 8th forward, and only then an all-reduce (of every gradient bucket).
    for rank in range(2):
        found = _all_reduces(tmp_path / "w", rank)
        assert found and all(forwards == [3, 6, 8] for forwards in found.values()), found
    ranks = [load_file(str(tmp_path / "w" / f"rank{r}.safetensors")) for r in range(2)]
    _close(*ranks, atol=0)
    history = _single(spec, tmp_path / "ref", 1, "train.accumulate_steps=3", batch=8)
    assert history[0]["step"] == 3
    _close(ranks[0], _last(tmp_path / "ref"), atol=1e-5)
