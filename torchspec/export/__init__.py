"""Leaving torchspec: a spec or a trained MODEL file as plain PyTorch source, ONNX or an ExportedProgram.

``export(path, to, out)`` reads a spec (.yaml/.yml/.json) or a MODEL file (model.safetensors,
a .ckpt), builds the module (with the trained weights for a MODEL file) and hands it to one writer:

- ``python``: :func:`torchspec.export.python.write_python` (a standalone .py, weights beside it)
- ``onnx``: :func:`torchspec.export.onnx.write_onnx` (dynamo export, dynamic batch)
- ``exported-program``: :func:`torchspec.export.program.write_program` (``torch.export.save``)

Every writer returns the files it wrote, each written atomically (:mod:`torchspec.fileio`). A
writer's module may also define ``missing() -> str | None`` (why it cannot run here: an extra not
installed; checked before anything is built) and ``summary(path) -> str`` (a few words for the
command's ``wrote FILE (...)`` line).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

    from torchspec.infer import ShapeReport

__all__ = ["MODEL_SUFFIXES", "TARGETS", "Exportable", "export", "load_exportable", "missing_extra", "summary"]

Target = Literal["python", "onnx", "exported-program"]
# target -> (module, writer function, the file suffix the output must have)
TARGETS: dict[str, tuple[str, str, str]] = {
    "python": ("torchspec.export.python", "write_python", ".py"),
    "onnx": ("torchspec.export.onnx", "write_onnx", ".onnx"),
    "exported-program": ("torchspec.export.program", "write_program", ".pt2"),
}
MODEL_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class Exportable:
    """What a writer gets: the report (spec, shapes, wiring), the built module in eval() mode on the
    CPU, and ``state``: the trained weights when it came from a MODEL file (None from a spec, whose
    module holds freshly initialised weights)."""

    report: ShapeReport
    model: torch.nn.Module
    state: Mapping[str, torch.Tensor] | None
    source: str  # the spec or MODEL file it came from


def load_exportable(
    path: str | os.PathLike[str],
    *,
    variant: str | None = None,
    overrides: Iterable[str] = (),
    verify: bool = True,
    seed: int | None = 0,
) -> Exportable:
    """Read a spec or a MODEL file and build its module (CPU, eval mode). A MODEL file's weights
    are verified first (:func:`torchspec.builder.load_model`); ``variant``/``overrides`` apply to a
    spec only (a MODEL file holds the spec it was trained from)."""
    from torchspec.builder import build_from_report, check_memory, load_model
    from torchspec.infer import infer_shapes
    from torchspec.spec import load_spec

    file = os.fspath(path)
    if file.lower().endswith(MODEL_SUFFIXES):
        model, spec = load_model(file, verify=verify, with_spec=True)
        report = infer_shapes(spec)
        state = {key: value.detach() for key, value in model.state_dict().items()}
        return Exportable(report, model, state, file)
    report = infer_shapes(load_spec(file, variant=variant, overrides=overrides))
    check_memory(report, file)
    model = build_from_report(report, seed=seed)
    model.eval()
    return Exportable(report, model, None, file)


def export(
    path: str | os.PathLike[str],
    to: Target,
    out: str | os.PathLike[str],
    *,
    variant: str | None = None,
    overrides: Iterable[str] = (),
    verify: bool = True,
) -> list[Path]:
    """Export the spec or MODEL file at ``path`` to ``out``; returns the files written.

    ImportError (before anything is built) when the target needs an extra that is not installed.
    """
    module, function, _ = TARGETS[to]
    reason = missing_extra(to)
    if reason is not None:
        raise ImportError(reason)
    item = load_exportable(path, variant=variant, overrides=overrides, verify=verify)
    writer: Any = getattr(importlib.import_module(module), function)
    return list(writer(item, Path(out)))


def missing_extra(to: Target) -> str | None:
    """Why ``to`` cannot be written here (``--to onnx`` without the onnx extra), or None."""
    name = TARGETS[to][0]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return f"--to {to} is not part of this torchspec"
    check = getattr(module, "missing", None)
    return None if check is None else check()


def summary(to: Target, path: str | os.PathLike[str]) -> str | None:
    """What was written, in a few words (``ONNX opset 20, 245.12 kB, input float32 [batch, 8]``),
    or None where the target says nothing more than the file's name."""
    describe = getattr(importlib.import_module(TARGETS[to][0]), "summary", None)
    return None if describe is None else str(describe(Path(path)))
