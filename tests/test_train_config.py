"""The train section: located validation errors, --set overrides, and every loss/optimizer/scheduler
built from config and stepped once on a tiny model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from torchspec.errors import SpecError
from torchspec.spec import load_spec
from torchspec.training.config import LOSSES, OPTIMIZERS, SCHEDULERS, TrainConfig
from torchspec.training.objects import adapt_target, make_loss, make_optimizer, make_scheduler
from torchspec.training.resolve import resolve_spec, validate_train

HEAD = """\
name: tiny
input: [4]
layers:
  - {type: Linear, out_features: 3}
"""


def write(tmp_path: Path, train: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "train:\n" + textwrap.indent(textwrap.dedent(train), "  "))
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(SpecError) as info:
        resolve_spec(path, overrides)
    return str(info.value)


def test_defaults_and_bare_names(tmp_path: Path) -> None:
    spec, config = resolve_spec(write(tmp_path, "data: synthetic-motion\nloss: MSELoss\noptimizer: SGD\n"))
    assert config.data.source == "synthetic-motion"
    assert config.loss.type == "MSELoss" and config.optimizer.type == "SGD"
    assert config.val_fraction == 0.2 and config.epochs == 10
    assert spec.train is not None and validate_train(spec) == config


def test_unknown_key_in_train_is_located_with_suggestion(tmp_path: Path) -> None:
    text = error_of(write(tmp_path, "data: random\nepoch: 3\n"))
    assert f"{tmp_path / 'spec.yaml'}:7:3: error: unknown key 'epoch' in train" in text
    assert "did you mean 'epochs'?" in text


@pytest.mark.parametrize(
    ("train", "where", "message", "hint"),
    [
        (
            "data: {source: synthetic-motion, sampels: 10}\n",
            "6:36",
            "has no parameter 'sampels'",
            "'samples'",
        ),
        (
            "data: random\nloss: CrossEntropyLos\n",
            "7:9",
            "unknown loss 'CrossEntropyLos'",
            "'CrossEntropyLoss'",
        ),
        ("data: random\noptimizer: {type: Adamw, lr: 0.1}\n", "7:21", "unknown optimizer 'Adamw'", "'AdamW'"),
        (
            "data: random\nscheduler: {type: CosineAnnealing}\n",
            "7:21",
            "unknown scheduler",
            "'CosineAnnealingLR'",
        ),
        ("data: {source: digit}\n", "6:18", "unknown data source 'digit'", "'digits'"),
        (
            "data: random\noptimizer: {type: SGD, momentun: 0.9}\n",
            "7:26",
            "SGD (train.optimizer) has no parameter 'momentun'",
            "'momentum'",
        ),
        ("data: random\nepochs: 0\n", "7:11", "epochs", "0"),
        ("data: random\ndevice: gpu\n", "7:11", "device", "gpu"),
        ("data: random\nprecision: fp8\n", "7:14", "precision", "fp8"),
        ("data: tensors\n", "6:9", "tensors (train.data) is missing required parameter 'inputs'", "inputs"),
    ],
)
def test_located_errors(tmp_path: Path, train: str, where: str, message: str, hint: str) -> None:
    text = error_of(write(tmp_path, train))
    assert f"spec.yaml:{where}: error:" in text
    assert message in text and hint in text


def test_no_train_section(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD)
    assert "the spec has no `train` section" in error_of(path)
    with pytest.raises(SpecError, match="no `train` section"):
        validate_train(load_spec(path))


def test_overrides_apply_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, "data: random\nepochs: 5\n")
    spec, config = resolve_spec(
        path,
        [
            "train.epochs=1",
            "train.optimizer.lr=0.1",
            "train.loss.label_smoothing=0.1",
            "layers.0.out_features=5",
        ],
    )
    assert config.epochs == 1 and config.optimizer.lr == 0.1 and config.optimizer.type == "Adam"
    assert config.loss.type == "CrossEntropyLoss" and config.loss.label_smoothing == 0.1
    assert spec.to_data()["layers"][0]["out_features"] == 5


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("train.epoch=1", "unknown key 'epoch' in train"),
        ("train.optimizer.lrr=1", "Adam (train.optimizer) has no parameter 'lrr'"),
        ("train.epochs=zero", "'zero'"),
        ("train.epochs", "expected KEY=VALUE"),
        ("layers.3.out_features=2", "no index 3"),
        ("train.epochs.x=1", "train.epochs is the value 5; it has no 'x'"),
        ("train.optimizer.type=Adamw", "unknown optimizer 'Adamw'"),
        ("input=[1, 2", "not valid YAML"),
    ],
)
def test_bad_override_names_the_set_argument(tmp_path: Path, arg: str, message: str) -> None:
    text = error_of(write(tmp_path, "data: random\nepochs: 5\n"), (arg,))
    assert text.startswith(f"--set {arg}: error: ")
    assert message in text
    if arg == "train.epoch=1":
        assert "did you mean 'epochs'?" in text


def test_val_fraction_and_val_source_conflict(tmp_path: Path) -> None:
    text = error_of(write(tmp_path, "data: {source: random, val_fraction: 0.1}\nval: random\n"))
    assert "not both" in text


def _tiny_step(loss_cfg: object, opt_cfg: object, sched_cfg: object | None) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    loss_fn = make_loss(loss_cfg)
    optimizer = make_optimizer(opt_cfg, model.parameters())
    scheduler = None
    if sched_cfg is not None:
        scheduler, interval = make_scheduler(
            sched_cfg, optimizer, epochs=3, steps_per_epoch=2, monitor="val_loss"
        )
    x = torch.randn(8, 4)
    out = model(x)
    kind = getattr(loss_cfg, "type")  # noqa: B009
    y = torch.randint(0, 3, (8,)) if kind in ("CrossEntropyLoss", "NLLLoss") else torch.rand(8, 3)
    out = out.log_softmax(1) if kind == "NLLLoss" else out
    loss = loss_fn(out, adapt_target(kind, out, y))
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        if interval == "metric":
            scheduler.step(loss.item())
        else:
            scheduler.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.weight)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss(name: str) -> None:
    config = TrainConfig.model_validate({"data": "random", "loss": name})
    _tiny_step(config.loss, config.optimizer, None)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer(name: str) -> None:
    extra = {"SGD": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "lr": 0.1}}.get(name, {})
    config = TrainConfig.model_validate({"data": "random", "optimizer": {"type": name, **extra}})
    _tiny_step(config.loss, config.optimizer, None)


SCHEDULER_ARGS = {
    "StepLR": {"step_size": 1},
    "MultiStepLR": {"milestones": [1, 2]},
    "ExponentialLR": {"gamma": 0.9},
    "CosineAnnealingLR": {"T_max": 3},
    "LinearLR": {"total_iters": 2},
    "OneCycleLR": {"max_lr": 0.1},
    "ReduceLROnPlateau": {"patience": 0},
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_each_scheduler(name: str) -> None:
    config = TrainConfig.model_validate(
        {"data": "random", "optimizer": "SGD", "scheduler": {"type": name, **SCHEDULER_ARGS[name]}}
    )
    _tiny_step(config.loss, config.optimizer, config.scheduler)


def test_nesterov_needs_momentum(tmp_path: Path) -> None:
    assert "nesterov: true needs momentum > 0" in error_of(
        write(tmp_path, "data: random\noptimizer: {type: SGD, nesterov: true}\n")
    )


def test_config_module_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, torchspec.training.validate; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("train", "where"),
    [
        ("data: random\nseed: -1\n", "7:9"),
        ("data: {source: synthetic-motion, seed: -5}\n", "6:42"),
    ],
)
def test_seeds_are_bounded_with_the_range_in_the_error(tmp_path: Path, train: str, where: str) -> None:
    text = error_of(write(tmp_path, train))
    assert f"spec.yaml:{where}: error:" in text and "seed" in text
    assert "[0, 2**63 - 1]" in text


@pytest.mark.parametrize("key", ["train.seed", "train.data.seed"])
def test_huge_seed_override_is_a_clear_error(tmp_path: Path, key: str) -> None:
    text = error_of(write(tmp_path, "data: random\n"), (f"{key}=99999999999999999999",))
    assert f"--set {key}=99999999999999999999: error:" in text
    assert "[0, 2**63 - 1]" in text


def test_largest_seed_is_accepted(tmp_path: Path) -> None:
    _, config = resolve_spec(write(tmp_path, "data: {source: random, seed: 9223372036854775807}\nseed: 0\n"))
    assert config.data.seed == 2**63 - 1  # type: ignore[union-attr]
