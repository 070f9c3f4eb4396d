"""A checkpoint's structure is validated before any part of it is used; non-finite weights or
metrics are never resumed, evaluated or exported silently.

Each case below damages one key of a real checkpoint (as a stranger's file could): every one must
be ``FILE: error: not a valid torchspec checkpoint: KEY: ...`` (or "not a torchspec file"), never
a KeyError, TypeError, ValueError or a silent load, from the library and from the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ARTEFACT_SPEC as SPEC
from conftest import cli as _cli
from conftest import process as _process
from conftest import write_spec

import torchspec
from torchspec import SpecError
from torchspec.training.checkpoint import FORMAT, load_checkpoint

NAN = float("nan")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at a path (``rng/numpy/1``: list items and optimizer states by number);
    ``DEL`` deletes it, a callable maps the old value."""

    def key_in(node: Any, step: str) -> Any:
        numbered = isinstance(node, list) or (
            isinstance(node, dict) and any(isinstance(k, int) for k in node)
        )
        return int(step) if numbered and step.isdigit() else step

    def apply(state: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = state
        for step in parents:
            node = node[key_in(node, step)]
        key = key_in(node, last)
        if value is DEL:
            del node[key]
        else:
            node[key] = value(node[key]) if callable(value) else value

    return apply


DEL = object()
REQUIRED = ("spec", "model", "optimizer", "scheduler", "scaler", "epoch", "batch",
            "step", "best", "history", "sums", "rng")  # fmt: skip
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # every key missing
    **{f"no {key}": (_set(key, DEL), key) for key in REQUIRED},
    "unknown key": (_set("extra", 1), "extra: unexpected key"),
    "spec a list": (_set("spec", "[1]"), "not a torchspec file"),
    "spec a path": (_set("spec", '"/etc/passwd"'), "not a torchspec file"),
    "model a list": (_set("model", []), "model: expected a mapping"),
    "model tensor a list": (_set("model/head.bias", [0.0, 1.0, 2.0]), "model.head.bias: expected a tensor"),
    "model NaN": (_set("model/hidden.weight", lambda t: t * NAN), "model.hidden.weight: holds non-finite"),
    "model inf": (
        _set("model/norm.running_var", lambda t: t / 0),
        "model.norm.running_var: holds non-finite",
    ),
    "optimizer a string": (_set("optimizer", "adam"), "optimizer: expected a mapping"),
    "no param_groups": (_set("optimizer/param_groups", DEL), "optimizer: missing param_groups"),
    "empty param_groups": (_set("optimizer/param_groups", []), "optimizer.param_groups: no parameter groups"),
    "group without params": (_set("optimizer/param_groups/0/params", DEL), "missing params"),
    "params not ints": (_set("optimizer/param_groups/0/params", ["a"]), "params[0]: expected an int"),
    "lr NaN": (_set("optimizer/param_groups/0/lr", NAN), "optimizer.param_groups[0].lr"),
    "state of no param": (_set("optimizer/state/99", {}), "state for parameter 99"),
    "state NaN": (_set("optimizer/state/0/exp_avg", lambda t: t * NAN), "optimizer.state[0].exp_avg"),
    "state a string": (_set("optimizer/state/0/step", "3"), "optimizer.state[0].step"),
    "scheduler a number": (_set("scheduler", 5), "scheduler: expected a mapping"),
    "scaler a string": (_set("scaler", "x"), "scaler: expected a mapping"),
    "epoch negative": (_set("epoch", -1), "epoch: expected an int >= 0"),
    "epoch a string": (_set("epoch", "1"), "epoch: expected an int"),
    "batch a float": (_set("batch", 1.5), "batch: expected an int"),
    "step a bool": (_set("step", True), "step: expected an int"),
    "best NaN": (_set("best", NAN), "best: expected a finite number"),
    "history a dict": (_set("history", {}), "history: expected a list"),
    "history too short": (_set("history", []), "history: 0 rows for 1 finished epochs"),
    "history row a list": (_set("history/0", [1]), "history[0]: expected a mapping"),
    "history NaN loss": (_set("history/0/val_loss", NAN), "history[0].val_loss"),
    "history no lr": (_set("history/0/lr", DEL), "history[0]: missing lr"),
    "sums missing": (_set("sums/samples", DEL), "sums: missing samples"),
    "sums NaN": (_set("sums/loss", NAN), "sums.loss"),
    "rng a list": (_set("rng", []), "rng: expected a mapping"),
    "rng no numpy": (_set("rng/numpy", DEL), "rng: missing numpy"),
    "python state short": (_set("rng/python/1", [1, 2, 3]), "rng.python[1]: expected 625 items"),
    "python state big": (_set("rng/python/1", [2**40] * 625), "rng.python[1]"),
    "python wrong length": (_set("rng/python", [3]), "rng.python: expected 3 items"),
    "numpy name": (_set("rng/numpy/0", "PCG64"), "rng.numpy[0]: expected 'MT19937'"),
    "numpy keys floats": (
        _set("rng/numpy/1", lambda t: t.double()),
        "rng.numpy[1]: expected a tensor of 624 int64",
    ),
    "numpy pos": (_set("rng/numpy/2", 999), "rng.numpy[2]"),
    "torch rng dtype": (_set("rng/torch", lambda t: t.long()), "rng.torch: expected a tensor"),
    "torch rng size": (_set("rng/torch", lambda t: t[:10]), "rng.torch: expected a tensor of 5056 uint8"),
    "cuda a dict": (_set("rng/cuda", {}), "rng.cuda: expected a list"),
    "world size 0": (_set("world_size", 0), "world_size: expected an int >= 1"),
}


@pytest.fixture(scope="module")
def run(artefact_run: Path) -> Path:
    return artefact_run


def _damaged(run: Path, tmp_path: Path, case: str) -> Path:
    state = torch.load(run / "run" / "last.ckpt", weights_only=True)
    state["rng"]["numpy"] = list(state["rng"]["numpy"])
    CASES[case][0](state)
    path = tmp_path / "damaged.ckpt"
    torch.save(state, path)  # as a stranger would: torch.save, right format tag
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_key_is_named(run: Path, tmp_path: Path, case: str) -> None:
    path = _damaged(run, tmp_path, case)
    with pytest.raises(SpecError) as info:
        load_checkpoint(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: error: ")
    assert CASES[case][1] in text
    assert "not a valid torchspec checkpoint" in text or "not a torchspec file" in text


@pytest.mark.parametrize(
    "case", ["no model", "model NaN", "rng a list", "optimizer a string", "history NaN loss"]
)
def test_the_commands_refuse_a_damaged_checkpoint(run: Path, tmp_path: Path, case: str) -> None:
    path = _damaged(run, tmp_path, case)
    for args in (
        ("predict", str(path), str(run / "x.npy")),
        ("eval", str(run / "spec.yaml"), "--checkpoint", str(path)),
        ("train", str(run / "spec.yaml"), "--resume", str(path), "--set", "train.epochs=2"),
    ):
        result = _cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr and CASES[case][1] in result.stderr


def test_the_bare_format_tag_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "x.ckpt"
    torch.save({"format": FORMAT}, path)
    with pytest.raises(SpecError, match=r"not a valid torchspec checkpoint: .*missing"):
        load_checkpoint(str(path))


# -- states that only the objects they load into can judge (resume) --------------------------------
LIVE = {
    "lr a string": (_set("optimizer/param_groups/0/lr", "fast"), "optimizer.param_groups[0].lr"),
    "betas short": (_set("optimizer/param_groups/0/betas", (0.9,)), "optimizer.param_groups[0].betas"),
    "a group too many": (
        _set("optimizer/param_groups", lambda g: [*g, {**g[0], "params": [99]}]),
        "optimizer.param_groups: expected 1 items",
    ),
    "exp_avg shape": (
        _set("optimizer/state/0/exp_avg", lambda t: t.flatten()),
        "optimizer.state[0].exp_avg: shape",
    ),
    "scheduler keys": (_set("scheduler", {"last_epoch": 1}), "scheduler: keys differ"),
    "scheduler type": (_set("scheduler/last_epoch", "one"), "scheduler.last_epoch"),
}


@pytest.mark.parametrize("case", sorted(LIVE))
def test_resume_checks_states_against_this_runs_objects(run: Path, tmp_path: Path, case: str) -> None:
    state = torch.load(run / "run" / "last.ckpt", weights_only=True)
    LIVE[case][0](state)
    path = tmp_path / "live.ckpt"
    torch.save(state, path)
    with pytest.raises(SpecError) as info:
        torchspec.train(run / "spec.yaml", ["train.epochs=2"], resume=str(path), quiet=True)
    assert "not a valid torchspec checkpoint" in str(info.value) and LIVE[case][1] in str(info.value)


# -- non-finite weights and metrics ----------------------------------------------------------------
def test_nan_weights_are_never_exported(run: Path, tmp_path: Path) -> None:
    model = torchspec.build(run / "spec.yaml")
    with torch.no_grad():
        model.hidden.weight.fill_(NAN)
    out = tmp_path / "nan.safetensors"
    with pytest.raises(SpecError, match=r"refusing to write .*nan\.safetensors: the weights are not finite"):
        torchspec.save_model(model, torchspec.load_spec(run / "spec.yaml"), out)
    assert not out.exists()


def test_resuming_an_all_nan_checkpoint_is_refused_and_writes_nothing(run: Path, tmp_path: Path) -> None:
    state = torch.load(run / "run" / "last.ckpt", weights_only=True)
    state["model"] = {k: v * NAN if v.is_floating_point() else v for k, v in state["model"].items()}
    out = tmp_path / "out"
    out.mkdir()
    torch.save(state, out / "last.ckpt")
    spec = write_spec(tmp_path, SPEC, out="out")
    with pytest.raises(
        SpecError, match=r"last\.ckpt: error: not a valid torchspec checkpoint: model\..*non-finite"
    ):
        torchspec.train(spec, ["train.epochs=2"], resume="auto", quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["last.ckpt"]  # no model.safetensors, no metrics


def test_a_non_finite_eval_loss_is_an_error_naming_the_checkpoint(run: Path, tmp_path: Path) -> None:
    # float64 inputs, finite as stored (non-finite data is refused before use), that become inf as
    # the model's float32: the loss is not finite
    inputs = np.full((8, 6), 1e300, np.float64)
    np.save(tmp_path / "inputs.npy", inputs)
    np.save(tmp_path / "targets.npy", np.zeros(8, np.int64))
    spec = write_spec(
        tmp_path,
        SPEC.replace(
            "{source: random, samples: 48, classes: 3}",
            f"{{source: tensors, inputs: {tmp_path / 'inputs.npy'}, targets: {tmp_path / 'targets.npy'}}}",
        ),
        name="infdata",
    )
    result = _process("eval", str(spec), "--checkpoint", str(run / "run" / "last.ckpt"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "last.ckpt: error: the" in result.stderr and "loss of" in result.stderr
    assert "nan" in result.stderr and "loss:" not in result.stdout
