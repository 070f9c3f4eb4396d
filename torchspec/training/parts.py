"""Pieces the loop, ``eval`` and ``predict`` share: device choice, evaluation, the batch check,
the resolved spec, and loading a model's weights from a checkpoint or a .safetensors file."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.infer import ShapeReport
from torchspec.spec import Spec, load_spec
from torchspec.training.config import TrainConfig
from torchspec.training.objects import accuracy_counts, adapt_target

__all__ = ["autocast", "check_first_batch", "evaluate", "load_weights", "pick_device", "resolved_data"]


def pick_device(name: str) -> torch.device:
    """``auto`` is cuda > mps > cpu; an explicit device that is not available is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise SpecError.single("--device", f"device {name} is not available", hints=["use cpu or auto"])
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise SpecError.single("--device", "device mps is not available", hints=["use cpu or auto"])
    return device


def autocast(device: torch.device, precision: str) -> Any:
    """Mixed precision for the forward pass (and the loss); fp32 runs as is."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def evaluate(
    model: torch.nn.Module,
    loader: Any,
    loss_fn: torch.nn.Module,
    loss_type: str,
    device: torch.device,
    precision: str,
    memory_format: torch.memory_format | None = None,
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) over ``loader``, in eval mode, no gradients."""
    fmt = memory_format or torch.preserve_format
    was_training = model.training
    model.eval()
    loss_sum, samples, correct, counted = 0.0, 0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True, memory_format=fmt), y.to(device, non_blocking=True)
            with autocast(device, precision):
                out = model(x)
                target = adapt_target(loss_type, out, y)
                loss = loss_fn(out, target)
            loss_sum += float(loss) * x.shape[0]
            samples += x.shape[0]
            counts = accuracy_counts(loss_type, out, target)
            if counts is not None:
                correct, counted = correct + counts[0], counted + counts[1]
    model.train(was_training)
    return loss_sum / max(samples, 1), (correct / counted if counted else None)


def check_first_batch(spec: Spec, x: Any, y: Any, source: str) -> None:
    """The first batch must hold samples of the spec's ``input`` shape; a clear error otherwise."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        message = f"the data source {source} must yield (input, target) tensor pairs, got {type(x).__name__}"
        raise SpecError([spec.document.problem(("train", "data"), message)])
    if tuple(x.shape[1:]) != tuple(spec.input):
        message = (
            f"the first batch from train.data ({source}) has samples of shape {list(x.shape[1:])} "
            f"(batch {list(x.shape)}), but the spec's input is {list(spec.input)}"
        )
        hints = ["change the spec's input to the data's sample shape, or reshape the data"]
        raise SpecError([spec.document.problem(("input",), message, hints)])


def resolved_data(spec: Spec, report: ShapeReport, config: TrainConfig, output_dir: str) -> dict[str, Any]:
    """The spec as run: overrides applied, inferred layer arguments written out, train complete."""
    data = spec.to_data()
    for row in report.rows:
        node: Any = data
        for step in row.data_path:
            node = node[step]
        for key, value in row.args.items():
            node.setdefault(key, list(value) if isinstance(value, tuple) else value)
    train = config.model_dump(mode="json", exclude_none=True)
    train["output_dir"] = output_dir
    data["train"] = train
    return data


def load_weights(path: str) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, state_dict) from a training checkpoint (.ckpt) or a model.safetensors file."""
    from torchspec.training.checkpoint import load_checkpoint

    if path.endswith(".safetensors"):
        from safetensors import safe_open
        from safetensors.torch import load_file

        from torchspec.builder import SPEC_METADATA_KEY

        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
            state = load_file(path, device="cpu")
        except (OSError, ValueError, RuntimeError) as exc:
            raise SpecError.single(path, f"cannot read safetensors file: {exc}") from None
        if SPEC_METADATA_KEY not in metadata:
            raise SpecError.single(path, "this safetensors file carries no torchspec spec in its metadata")
        return load_spec(json.loads(metadata[SPEC_METADATA_KEY])), state
    if not os.path.exists(path):
        raise SpecError.single(path, f"{path} does not exist")
    ckpt = load_checkpoint(path)
    return load_spec(json.loads(ckpt["spec"])), ckpt["model"]
