"""``eval`` and ``predict`` as library functions: metrics of a checkpoint, outputs for a batch."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from torchspec.artefacts import check_state
from torchspec.builder import build_from_report, check_memory
from torchspec.errors import SpecError
from torchspec.infer import infer_shapes
from torchspec.spec import Spec
from torchspec.training.arrays import ArrayFileError, open_array
from torchspec.training.checkpoint import FOREIGN_CHECKPOINT_HINTS, load_state_checked
from torchspec.training.data import load_data, make_loader
from torchspec.training.dtypes import DTypeError, input_values
from torchspec.training.media_input import is_media, load_media
from torchspec.training.metrics import Tally
from torchspec.training.objects import make_loss
from torchspec.training.parts import evaluate, id_problem, load_weights, pick_device
from torchspec.training.paths import spec_folder
from torchspec.training.resolve import resolve_spec

__all__ = [
    "DEFAULT_BATCH",
    "Prediction",
    "class_names",
    "evaluate_checkpoint",
    "load_input",
    "open_input",
    "predict",
]

DEFAULT_BATCH = 256  # samples per forward pass in predict


def evaluate_checkpoint(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    checkpoint: str,
    overrides: Iterable[str] = (),
    *,
    say: Any = print,
    verify: bool = True,
    allow_code: bool = False,
    variant: str | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    """Loss, accuracy and the task's other metrics (:mod:`.metrics`) of the weights in
    ``checkpoint`` on the spec's test set (``train.test``), else its validation data.

    ``data``: a test set file instead (a .npz, or a .pt of ``x`` and ``y``), a path on the command
    line: relative to the working directory, not the spec.

    The weights are verified as :func:`~torchspec.training.parts.load_weights` says (``verify=False``
    skips a .safetensors digest) and compared with the spec's analytic state before the model is
    built; a non-finite loss is an error naming the checkpoint, never a printed ``nan``.
    ``allow_code``: consent to import the module a ``python`` data source names (``--allow-code``);
    ``variant`` picks one of the spec's variants.
    """
    if data is not None:
        test = f"train.test={{source: tensors, inputs: {json.dumps(os.path.abspath(data))}}}"
        overrides = [*overrides, test]
    spec, config = resolve_spec(spec, overrides, variant=variant)
    file = spec.document.file
    base_dir = spec_folder(file)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    report = infer_shapes(spec)  # the output shape without a forward pass (BatchNorm stays untouched)
    state = load_weights(checkpoint, verify=verify)[1]
    check_state(report.state_shapes(), _shapes(state), checkpoint, FOREIGN_CHECKPOINT_HINTS)
    check_memory(report, checkpoint)
    model = build_from_report(report)
    load_state_checked(model, state, checkpoint, hints=FOREIGN_CHECKPOINT_HINTS)
    model.to(device)
    output_shape = tuple(report.output[1:])
    loaded = load_data(
        config,
        spec.input_shape,
        output_shape,
        file=file,
        doc=spec.document,
        base_dir=base_dir,
        allow_code=allow_code,
        test=True,
        ids=report.id_range,
    )
    split, dataset = ("val", loaded.val) if loaded.val is not None else ("train", loaded.train)
    if config.test is not None:
        split = "test"
    elif loaded.val is None:
        say("no validation data (val_fraction: 0 and no train.val): evaluating on the training data")
        dataset = dataset.for_eval() if hasattr(dataset, "for_eval") else dataset  # eval_transform
    loader = make_loader(dataset, config, train=False, pin_memory=device.type == "cuda")[0]
    tally = Tally(config.loss.type, getattr(config.loss, "ignore_index", None))
    loss, accuracy = evaluate(
        model, loader, make_loss(config.loss), config.loss.type, device, config.precision, tally=tally
    )
    if not math.isfinite(loss):
        raise SpecError.single(
            checkpoint,
            f"the {split} loss of {checkpoint} is {loss}: not a usable result",
            hints=["the weights are finite, so the data or the loss gives it: check the data for inf/NaN"],
        )
    samples = len(dataset)  # type: ignore[arg-type]
    found = {"split": split, "samples": samples, "loss": loss, "accuracy": accuracy, **tally.result()}
    names = class_names(dataset)
    if names is not None and len(names) == len(found.get("confusion") or []):
        found["class_names"] = names
    return found


def class_names(dataset: Any) -> list[str] | None:
    """The class names a data set knows (folder sources, torchvision's ``classes``), else None."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    names = getattr(base, "classes", None)
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
        return [str(n) for n in names]
    return None


def open_input(path: str) -> Any:
    """The array in a .npy (memory-mapped) or .pt (weights_only, memory-mapped) file, checked as a
    file from a stranger may need (see :mod:`.arrays`): nothing is read into memory yet."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".pt"):
        raise SpecError.single(path, f"unsupported input file {path}: use .npy or .pt")
    try:
        return open_array(path, None, "input")
    except ArrayFileError as exc:
        raise SpecError.single(path, str(exc), hints=_INPUT_HINTS) from None


def load_input(path: str) -> torch.Tensor:
    """A .npy or .pt input as a float32 tensor, converted by the dtype rule (all of it, in memory)."""
    return _batch(open_input(path), 0, None, path)


_INPUT_HINTS = ["save one sample or a batch of real numbers: np.save(path, x.astype(np.float32))"]


def _batch(x: Any, start: int, stop: int | None, path: str, spec: Spec | None = None) -> torch.Tensor:
    """Samples ``start:stop`` of ``x`` as float32 (the dtype rule), refused if any is not finite;
    as int64 ids, refused outside the declared range, when ``spec``'s input is token ids."""
    rows = x[start:stop]
    if spec is not None and spec.input_range is not None:
        t = rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.array(rows))
        found = id_problem(spec, t, f"{path} (samples {start} .. {start + t.shape[0] - 1})")
        if found is not None:
            raise SpecError.single(path, found[0], hints=found[1])
        return t.to(torch.int64)
    try:
        t = input_values(rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.array(rows)))
    except DTypeError as exc:
        raise SpecError.single(path, f"{path} holds {exc}", hints=_INPUT_HINTS) from None
    finite = torch.isfinite(t).reshape(t.shape[0], -1).all(dim=1)
    if not bool(finite.all()):
        first = start + int((~finite).nonzero()[0, 0])
        raise SpecError.single(
            path,
            f"input sample {first} of {path} holds NaN or infinite values; the model's outputs "
            "for it would be meaningless",
            hints=["replace or drop the non-finite values (np.isfinite(x).all(axis=...))"],
        )
    return t


@dataclass
class Prediction:
    outputs: torch.Tensor  # (N, *output): raw model outputs
    probabilities: torch.Tensor | None  # (N, classes) for classifiers


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def predict(
    model_path: str,
    input_path: str,
    *,
    device: str = "cpu",
    batch: int = DEFAULT_BATCH,
    verify: bool = True,
) -> Prediction:
    """Run the model in ``model_path`` (.ckpt or .safetensors) on the sample or batch in ``input_path``.

    The file is verified and its tensors checked against its spec's analytic state before anything
    is built (:func:`~torchspec.training.parts.load_weights`; ``verify=False`` skips a digest). The
    input is memory-mapped and run ``batch`` samples at a time, so memory stays bounded by the batch
    and the outputs, whatever the file's size.
    """
    spec, state = load_weights(model_path, verify=verify)
    report = infer_shapes(spec)
    check_memory(report, model_path)
    model = build_from_report(report)
    load_state_checked(model, state, model_path, hints=FOREIGN_CHECKPOINT_HINTS)
    target = pick_device(device)
    model.to(target).eval()
    # a video or an image: the sample validation would take from it (folder sources)
    x = load_media(input_path, spec) if is_media(input_path) else open_input(input_path)
    want = tuple(spec.input_shape)
    if tuple(x.shape) == want:
        x = x[None]  # one sample: add the batch dimension (a view)
    if tuple(x.shape[1:]) != want:
        raise SpecError.single(
            input_path,
            f"the input has shape {list(x.shape)}, but the model takes {list(want)} "
            f"(one sample) or [N, {', '.join(map(str, want))}] (a batch)",
        )
    if x.shape[0] == 0:
        raise SpecError.single(input_path, f"the input {input_path} holds no samples (shape {list(x.shape)})")
    outs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):  # (batch, *input) -> (batch, *output)
            rows = _batch(x, start, start + batch, input_path, spec)
            outs.append(model(rows.to(target)).float().cpu())
    out = torch.cat(outs)
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
