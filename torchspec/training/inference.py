"""``eval`` and ``predict`` as library functions: metrics of a checkpoint, outputs for a batch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torchspec.builder import build, build_from_report
from torchspec.errors import SpecError
from torchspec.infer import infer_shapes
from torchspec.spec import Spec
from torchspec.training.checkpoint import FOREIGN_CHECKPOINT_HINTS, load_state_checked
from torchspec.training.data import load_data, make_loader
from torchspec.training.media_input import is_media, load_media
from torchspec.training.objects import make_loss
from torchspec.training.parts import evaluate, load_weights, pick_device
from torchspec.training.validate import resolve_spec

__all__ = ["Prediction", "evaluate_checkpoint", "load_input", "predict"]


def evaluate_checkpoint(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    checkpoint: str,
    overrides: Iterable[str] = (),
    *,
    say: Any = print,
) -> dict[str, Any]:
    """Loss and accuracy of the weights in ``checkpoint`` on the spec's validation data."""
    spec, config = resolve_spec(spec, overrides)
    file = spec.document.file
    base_dir = os.path.dirname(os.path.abspath(file)) if os.path.isfile(file) else None
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    report = infer_shapes(spec)  # the output shape without a forward pass (BatchNorm stays untouched)
    model = build_from_report(report)
    load_state_checked(model, load_weights(checkpoint)[1], checkpoint, hints=FOREIGN_CHECKPOINT_HINTS)
    model.to(device)
    output_shape = tuple(report.output[1:])
    data = load_data(config, spec.input, output_shape, file=file, base_dir=base_dir, say=say)
    split, dataset = ("val", data.val) if data.val is not None else ("train", data.train)
    if data.val is None:
        say("no validation data (val_fraction: 0 and no train.val): evaluating on the training data")
        dataset = dataset.for_eval() if hasattr(dataset, "for_eval") else dataset  # eval_transform
    loader = make_loader(dataset, config, train=False, pin_memory=device.type == "cuda")[0]
    loss, accuracy = evaluate(
        model, loader, make_loss(config.loss), config.loss.type, device, config.precision
    )
    return {"split": split, "samples": len(dataset), "loss": loss, "accuracy": accuracy}  # type: ignore[arg-type]


def load_input(path: str) -> torch.Tensor:
    """A .npy or .pt (weights_only) array: one sample or a batch."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise SpecError.single(path, f"input file {path} does not exist")
    try:
        if ext == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.dtype.kind not in "biuf":
                raise SpecError.single(
                    path,
                    f"input {path} holds {array.dtype} values ({_kind(array.dtype)}), not real numbers",
                    hints=["save a numeric (or bool) array, e.g. np.save(path, x.astype(np.float32))"],
                )
            return torch.from_numpy(np.ascontiguousarray(array))
        if ext == ".pt":
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(loaded, torch.Tensor):
                return loaded
            raise ValueError(f"it holds a {type(loaded).__name__}, not a tensor")
    except (OSError, ValueError, RuntimeError) as exc:
        raise SpecError.single(path, f"cannot read input {path}: {exc}") from None
    raise SpecError.single(path, f"unsupported input file {path}: use .npy or .pt")


def _kind(dtype: np.dtype[Any]) -> str:
    return {"U": "strings", "S": "bytes", "O": "objects", "c": "complex numbers", "M": "dates"}.get(
        dtype.kind, dtype.kind
    )


@dataclass
class Prediction:
    outputs: torch.Tensor  # (N, *output): raw model outputs
    probabilities: torch.Tensor | None  # (N, classes) for classifiers


def predict(model_path: str, input_path: str, *, device: str = "cpu") -> Prediction:
    """Run the model in ``model_path`` (.ckpt or .safetensors) on the sample or batch in ``input_path``."""
    spec, state = load_weights(model_path)
    model = build(spec)
    load_state_checked(model, state, model_path, hints=FOREIGN_CHECKPOINT_HINTS)
    target = pick_device(device)
    model.to(target).eval()
    # a video or an image: the sample validation would take from it (folder sources)
    x = load_media(input_path, spec) if is_media(input_path) else load_input(input_path)
    want = tuple(spec.input)
    if tuple(x.shape) == want:
        x = x.unsqueeze(0)  # one sample: add the batch dimension
    if tuple(x.shape[1:]) != want:
        raise SpecError.single(
            input_path,
            f"the input has shape {list(x.shape)}, but the model takes {list(want)} "
            f"(one sample) or [N, {', '.join(map(str, want))}] (a batch)",
        )
    with torch.no_grad():
        out = model(x.to(target, torch.float32)).float().cpu()
    last: str = getattr(spec.layers[-1], "type", "")
    probs = None
    if out.ndim == 2 and out.shape[1] > 1:
        if last == "Softmax":
            probs = out
        elif last == "LogSoftmax":
            probs = out.exp()
        else:
            probs = out.softmax(dim=1)
    return Prediction(out, probs)
