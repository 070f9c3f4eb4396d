"""Fuzz targets: each takes the fuzzer's bytes and may let only our own clear errors out.

The invariant of every target: an input is either accepted or refused with a
:class:`torchspec.errors.SpecError` (for the command line also argparse's ``SystemExit(2)``);
any other exception is a crash. Targets reach torchspec only through its public functions, so
they stay valid while the readers behind them change:

=============  ==================================================================================
spec_yaml      the bytes as a ``.yaml`` spec: ``torchspec.infer_shapes`` (load, validate, infer)
spec_json      the same as a ``.json`` spec
set_args       1-3 ``--set`` arguments and a ``--device``: the CLI parser, then ``resolve_spec``
checkpoint     the bytes as a ``.ckpt``: ``training.checkpoint.load_checkpoint`` and ``spec_of``
safetensors    the bytes as a ``.safetensors``: ``builder.read_safetensors``
arrays         the bytes as a tensors source (.npy, .npz or .pt, by the first byte): ``load_data``
               and the first sample
=============  ==================================================================================
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["KNOWN", "TARGETS", "Target", "seeds"]

Target = Callable[[bytes], None]
_DIR = tempfile.mkdtemp(prefix="torchspec-fuzz-")
_SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else _DIR
_WORK = tempfile.mkdtemp(prefix="torchspec-fuzz-", dir=_SHM)
TINY = {
    "name": "tiny",
    "input": [2, 4, 4],
    "layers": [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, "ReLU", "Flatten",
               {"type": "Linear", "out_features": 3}],
    "train": {"data": {"source": "random", "samples": 4}, "epochs": 1, "batch_size": 2},
}  # fmt: skip


def _file(name: str, data: bytes) -> str:
    path = os.path.join(_WORK, name)
    with open(path, "wb") as handle:  # a scratch file the target reads; not a torchspec output
        handle.write(data)
    return path


def _spec(ext: str) -> Target:
    def target(data: bytes) -> None:
        import torchspec

        torchspec.infer_shapes(_file("spec" + ext, data))

    return target


def set_args(data: bytes) -> None:
    """Lines: a ``--device`` value, then up to three ``--set`` arguments."""
    from torchspec.cli import make_parser
    from torchspec.cli.args import device_problem
    from torchspec.training.resolve import resolve_spec

    device, *args = data.decode("utf-8", "surrogateescape").split("\n")[:4]
    argv = ["train", "spec.yaml", "--device", device] + [a for arg in args for a in ("--set", arg)]
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            make_parser().parse_args(argv)
        except SystemExit as stop:
            if stop.code != 2:
                raise
    if device_problem(device) is None:
        args.append(f"train.device={device.strip()}")
    resolve_spec(TINY, args)


def checkpoint(data: bytes) -> None:
    from torchspec.training.checkpoint import load_checkpoint, spec_of

    spec_of(load_checkpoint(_file("x.ckpt", data)))


def safetensors(data: bytes) -> None:
    from torchspec.builder import read_safetensors

    read_safetensors(_file("x.safetensors", data))


def arrays(data: bytes) -> None:
    from torchspec.training.data import load_data
    from torchspec.training.resolve import resolve_spec

    ext = (".npy", ".npz", ".pt")[data[0] % 3] if data else ".npz"
    path = _file("x" + ext, data[1:])
    targets = {"targets": path} if ext == ".npy" else {}
    spec = {**TINY, "train": {**TINY["train"], "data": {"source": "tensors", "inputs": path, **targets}}}
    resolved, config = resolve_spec(spec)
    loaded = load_data(config, resolved.input, (3,), file="spec.yaml", say=lambda _: None)
    if len(loaded.train):
        loaded.train[0]


# Crashes found and reported, not yet fixed (in other modules' areas): (target, exception type,
# where). fuzz/crashes/TARGET/ holds their inputs; tests/test_fuzz.py replays them.
KNOWN: list[tuple[str, type[BaseException], str]] = []  # every crash found so far is fixed

TARGETS: dict[str, Target] = {
    "spec_yaml": _spec(".yaml"),
    "spec_json": _spec(".json"),
    "set_args": set_args,
    "checkpoint": checkpoint,
    "safetensors": safetensors,
    "arrays": arrays,
}


def seeds(name: str, root: str) -> list[bytes]:
    """The seed corpus of a target: the zoo and the bad specs, and tiny files made here."""
    specs = os.path.join(root, "specs")
    bad = os.path.join(root, "tests", "data", "bad")

    def read(folder: str, ext: str) -> list[bytes]:
        names = sorted(n for n in os.listdir(folder) if n.endswith(ext))
        return [open(os.path.join(folder, n), "rb").read() for n in names]

    if name == "spec_yaml":
        return read(specs, ".yaml") + read(bad, ".yaml")
    if name == "spec_json":
        return read(specs, ".json") + read(bad, ".json")
    if name == "set_args":
        return [
            b"cpu\ntrain.epochs=2\nlayers.0.out_channels=4",
            b"cuda:1\ntrain.optimizer.lr=1e-3\ntrain.loss.label_smoothing=0.1",
            b"auto\ntrain.data={source: random, samples: 8}\nlayers.3={type: Linear, out_features: 010}",
            b"mps\nlayers.1=[&a [1, 1], *a]\ntrain.seed=0x10",
        ]
    return _binary_seeds(name)


def _binary_seeds(name: str) -> list[bytes]:
    import numpy as np
    import torch

    from torchspec import build, load_spec
    from torchspec.builder import save_model
    from torchspec.training.checkpoint import FORMAT

    def saved(write: Callable[[str], Any], ext: str) -> bytes:
        path = os.path.join(_DIR, "seed" + ext)
        write(path)
        with open(path, "rb") as handle:
            return handle.read()

    spec = load_spec(TINY)
    model = build(spec)
    if name == "checkpoint":
        state = {"format": FORMAT, "spec": json.dumps(TINY), "model": model.state_dict(), "epoch": 1}
        return [saved(lambda p: torch.save(state, p), ".ckpt")]
    if name == "safetensors":
        return [saved(lambda p: save_model(model, spec, p), ".safetensors")]
    x = np.zeros((4, 2, 4, 4), np.float32)
    y = np.arange(4, dtype=np.int64) % 3
    return [
        b"\x00" + saved(lambda p: np.save(p, x), ".npy"),
        b"\x01" + saved(lambda p: np.savez(p, x=x, y=y), ".npz"),
        b"\x02" + saved(lambda p: torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, p), ".pt"),
    ]
