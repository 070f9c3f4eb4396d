"""Pieces the loop, ``eval`` and ``predict`` share: device choice, evaluation, the batch check,
the resolved spec, and loading a model's weights from a checkpoint or a .safetensors file."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.infer import ShapeReport
from torchspec.spec import Spec
from torchspec.training.config import CLASSIFICATION_LOSSES, TrainConfig
from torchspec.training.metrics import CSV_METRICS, Tally
from torchspec.training.objects import accuracy_counts, adapt_target
from torchspec.training.paths import absolute_paths

__all__ = [
    "autocast",
    "check_device",
    "check_first_batch",
    "evaluate",
    "id_problem",
    "label_range_problem",
    "load_weights",
    "pick_device",
    "resolved_data",
    "target_problem",
    "validation_row",
]


def check_device(name: str) -> str | None:
    """None if tensors can be created on ``name``, else why not (in words). ``build --device`` and
    the device choice of ``train``, ``eval`` and ``predict`` all ask this."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"invalid device {name!r}: {first}"
    if device.type == "meta":
        return "the meta device holds no data (shapes are verified on meta already): use cpu, cuda or mps"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch has no usable CUDA (torch.cuda.is_available() is False)"
            return f"device {name!r} is not available: {why}"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"device {name!r} is not available: there are {count} CUDA device(s), numbered from 0"
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        return f"device {name!r} is not available: MPS is not available on this machine"
    try:
        torch.empty(1, device=device)
    except Exception as exc:  # anything else torch refuses (not compiled in, no driver...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"device {name!r} is not available: {first}"
    return None


def pick_device(name: str) -> torch.device:
    """``auto`` is cuda > mps > cpu; an explicit device that is not available is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    problem = check_device(name)
    if problem is not None:
        raise SpecError.single("--device", problem, hints=["use auto, cpu, cuda, cuda:N or mps"])
    return torch.device(name)


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
    tally: Tally | None = None,
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) over ``loader``, in eval mode, no gradients;
    ``tally`` also counts the other metrics (:mod:`.metrics`)."""
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
            if tally is not None:
                tally.add(out, target)
    model.train(was_training)
    return loss_sum / max(samples, 1), (correct / counted if counted else None)


def validation_row(
    model: torch.nn.Module,
    loader: Any,
    loss_fn: torch.nn.Module,
    config: TrainConfig,
    device: torch.device,
    memory_format: torch.memory_format | None,
) -> dict[str, Any]:
    """``val_loss``, ``val_accuracy`` and the task's scalar metrics (``val_macro_f1``, ...) and
    per-class accuracies (``val_accuracy_class_<i>``, up to 100 classes) for metrics.csv."""
    tally = Tally(config.loss.type, getattr(config.loss, "ignore_index", None))
    loss, accuracy = evaluate(
        model, loader, loss_fn, config.loss.type, device, config.precision, memory_format, tally
    )
    found = tally.result()
    row: dict[str, Any] = {"val_loss": loss, "val_accuracy": accuracy}
    row.update({f"val_{name}": found[name] for name in CSV_METRICS if found.get(name) is not None})
    per_class = found.get("per_class_accuracy") or []
    if len(per_class) <= 100:
        row.update({f"val_accuracy_class_{i}": value for i, value in enumerate(per_class)})
    return row


def check_first_batch(spec: Spec, x: Any, y: Any, source: str) -> None:
    """The first batch must hold samples of the spec's ``input`` shape; a clear error otherwise."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        message = f"the data source {source} must yield (input, target) tensor pairs, got {type(x).__name__}"
        raise SpecError([spec.document.problem(("train", "data"), message)])
    if tuple(x.shape[1:]) != tuple(spec.input_shape):
        message = (
            f"the first batch from train.data ({source}) has samples of shape {list(x.shape[1:])} "
            f"(batch {list(x.shape)}), but the spec's input is {list(spec.input_shape)}"
        )
        hints = ["change the spec's input to the data's sample shape, or reshape the data"]
        raise SpecError([spec.document.problem(("input",), message, hints)])
    found_ids = id_problem(spec, x, f"the first batch from train.data ({source})")
    if found_ids is not None:
        raise SpecError([spec.document.problem(("input",), found_ids[0], found_ids[1])])
    if spec.train is None:
        return
    from torchspec.infer import infer_shapes

    config = TrainConfig.model_validate(spec.train)
    output = tuple(infer_shapes(spec).output[1:])
    ignore = getattr(config.loss, "ignore_index", None)
    found = target_problem(config.loss.type, output, y.is_floating_point(), tuple(y.shape[1:]), str(y.dtype))
    if found is None and config.loss.type in CLASSIFICATION_LOSSES and not y.is_floating_point():
        labels = y[y != ignore] if ignore is not None else y
        if labels.numel():
            lo, hi = int(labels.min()), int(labels.max())
            found = label_range_problem(config.loss.type, output, lo, hi, "the first batch of train.data")
    if found is not None:
        raise SpecError([spec.document.problem(("train", "loss"), found[0], found[1])])


def id_problem(spec: Spec, x: torch.Tensor, what: str) -> tuple[str, list[str]] | None:
    """(message, hints) when ``x`` cannot be the spec's int64 token ids: floats, or ids outside
    the declared ``[low, high)``; None when it can (or the spec's input is float32)."""
    declared = spec.input_range
    if declared is None:
        return None
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        return (
            f"{what} holds {str(x.dtype).removeprefix('torch.')} values, but the spec's input is "
            "int64 token ids",
            ["give integer ids (x.astype(np.int64)), or declare the input float32 if these are features"],
        )
    if x.numel():
        low, high = declared
        lo, hi = int(x.min()), int(x.max())
        if lo < low or (high is not None and hi >= high):
            top = "" if high is None else f" .. {high - 1}"
            return (
                f"{what} holds ids {lo} .. {hi}, outside the spec's input range {low}{top}",
                ["map the ids into the declared range, or declare the input's low and high to match"],
            )
    return None


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def target_problem(
    loss_type: str, output: tuple[int, ...], is_float: bool, target: tuple[int, ...], dtype: str
) -> tuple[str, list[str]] | None:
    """Why targets of per-sample shape ``target`` cannot feed ``loss_type`` for a model whose
    per-sample output is ``output`` (message, hints), or None if they fit."""
    if loss_type in CLASSIFICATION_LOSSES:
        labels = tuple(output[1:])  # [C] -> one label; [C, d1, ...] -> a label per position
        if is_float:
            if loss_type == "CrossEntropyLoss" and target == tuple(output):
                return None  # class probabilities
            return (
                f"{loss_type} needs integer class labels of shape {_shape_text(labels)}, but the data has "
                f"float targets of shape {_shape_text(target)} ({dtype})",
                [
                    "store the labels as integers (e.g. y.astype(np.int64))",
                    "or, for regression targets, use a regression loss (train.loss: MSELoss)",
                ],
            )
        if target != labels:
            return (
                f"{loss_type} needs one class label per sample (shape {_shape_text(labels)}) for the "
                f"model's output {_shape_text(output)}, but the data has targets of shape "
                f"{_shape_text(target)}",
                ["give one integer class label per sample, or change the loss"],
            )
        return None
    want = math.prod(output)
    if math.prod(target) == want:
        return None
    what = (
        f"float targets of shape {_shape_text(target)}"
        if is_float
        else f"class labels (integer targets of shape {_shape_text(target)}, {dtype})"
    )
    hints = [f"give targets of shape {_shape_text(output)}, one value per model output"]
    if not is_float:
        hints.insert(0, "for class labels use a classification loss (train.loss: CrossEntropyLoss)")
    return (
        f"{loss_type} needs float targets of the model's output shape {_shape_text(output)}, "
        f"but the data has {what}",
        hints,
    )


def label_range_problem(
    loss_type: str, output: tuple[int, ...], lo: int, hi: int, where: str
) -> tuple[str, list[str]] | None:
    """Labels in [lo, hi] (ignore_index left out) against the model's ``output[0]`` classes."""
    classes = output[0] if output else 1
    if lo >= 0 and hi < classes:
        return None
    hints = ["labels are class indices 0 .. classes-1"]
    if lo >= 0:
        hints.append(f"make the last layer output {hi + 1} values (one per class), or fix the labels")
    else:
        hints.append("fix the negative labels (or set the loss's ignore_index to the label to skip)")
    return (
        f"{loss_type} needs class labels in [0, {classes}) (the model outputs {classes} values per "
        f"sample), but {where} has labels in [{lo}, {hi}]",
        hints,
    )


def resolved_data(
    spec: Spec, report: ShapeReport, config: TrainConfig, output_dir: str, base_dir: str
) -> dict[str, Any]:
    """The spec as run: overrides applied, inferred layer arguments written out, train complete,
    its paths absolute (``base_dir``: the spec's folder), so it means the same from anywhere."""
    data = spec.to_data()
    for row in report.rows:
        node: Any = data
        for step in row.data_path:
            node = node[step]
        for key, value in row.args.items():
            node.setdefault(key, list(value) if isinstance(value, tuple) else value)
    train = config.model_dump(mode="json", exclude_none=True)
    train["output_dir"] = output_dir
    data["train"] = absolute_paths(train, base_dir)
    return data


def load_weights(path: str, *, verify: bool = True) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, state_dict) from a training checkpoint (.ckpt) or a model.safetensors file, verified
    (see :func:`~torchspec.builder.read_safetensors`, :func:`~.checkpoint.read_weights`);
    ``verify=False`` skips a .safetensors file's digest check (a checkpoint's CRCs are always checked)."""
    if path.endswith(".safetensors"):
        from torchspec.builder import read_safetensors

        return read_safetensors(path, verify=verify)
    from torchspec.training.checkpoint import read_weights

    return read_weights(path)
