"""What the ONNX and ExportedProgram writers share: an example batch, a dynamic batch dimension,
quiet tracing and one-line errors when torch refuses a model.

Both targets trace the module with ``torch.export`` on an example batch of
:data:`EXAMPLE_BATCH` samples (not 1: torch specialises a dimension whose example size is 1 to that
constant) with the batch dimension marked ``Dim("batch", min=1)``, so the file accepts any batch
size from 1 up. A spec whose shapes hold only for some batch sizes (a ``Reshape`` with
``include_batch: true`` to a fixed size) is refused before tracing, at the layer, by inferring its
shapes again at the example batch; there is no fixed-batch fallback, since a file that silently
takes one batch size only is worse than a clear error.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from torchspec.errors import SpecError

if TYPE_CHECKING:
    import torch
    from torch.export import ExportedProgram

    from torchspec.export import Exportable

__all__ = [
    "EXAMPLE_BATCH",
    "batch_symbol",
    "check_batch_free",
    "dynamic_batch",
    "example_input",
    "export_failure",
    "quiet",
    "trace",
]

EXAMPLE_BATCH = 2  # the traced batch: any size but 1 (torch would fix a size-1 dimension to 1)
BATCH_HINT = "the exported file takes any batch size, so every shape must hold for any batch"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def example_input(item: Exportable, count: int = EXAMPLE_BATCH) -> torch.Tensor:
    """A fixed random batch of ``count`` samples of the spec's input ([count, *input]): float32,
    or int64 token ids from the spec's id range."""
    import torch

    from torchspec.builder import random_input

    return random_input(item.report, torch.Generator().manual_seed(0), count=count)


def dynamic_batch() -> tuple[dict[int, Any]]:
    """``dynamic_shapes`` for the model's one input: dimension 0 is ``batch``, 1 or more."""
    import torch

    return ({0: torch.export.Dim("batch", min=1)},)


def check_batch_free(item: Exportable) -> None:
    """Refuse, at the layer, a spec whose shapes do not hold at the example batch (they were
    inferred for one sample); the SpecError of that inference, with a hint saying why it matters."""
    from torchspec.infer import infer_shapes

    try:
        infer_shapes(item.report.spec, batch=EXAMPLE_BATCH)
    except SpecError as err:
        raise SpecError([replace(p, hints=(*p.hints, BATCH_HINT)) for p in err.problems]) from None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and log records (the command prints
    ``wrote FILE`` and nothing else; a failure's reason travels in its exception)."""
    said = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _reason(exc: BaseException) -> str:
    """The innermost cause's first meaningful line (torch.onnx wraps the real one in a long
    "Failed to convert ..." report), without terminal colours, at most 300 characters."""
    inner = exc
    while inner.__cause__ is not None and inner.__cause__ is not inner:
        inner = inner.__cause__
    for candidate in (inner, exc):
        lines = [_ANSI.sub("", line).strip() for line in str(candidate).splitlines()]
        lines = [line for line in lines if line]
        if lines:
            text = f"{type(candidate).__name__}: {lines[0]}"
            return text if len(text) <= 300 else text[:297] + "..."
    return type(exc).__name__


def export_failure(item: Exportable, target: str, exc: BaseException, hints: Sequence[str] = ()) -> SpecError:
    """The error for a model torch could not export to ``target``: the source file, torch's reason."""
    if "Constraints violated (batch)" in _ANSI.sub("", str(exc)):  # torch fixed the batch to a size
        hints = [*hints, f"the model works for some batch sizes only: {BATCH_HINT}"]
    return SpecError.single(
        item.source,
        f"cannot export {item.source} to {target}: torch refused the model ({_reason(exc)})",
        hints=[*hints, "the layers torch cannot trace or translate are torch's limits, not the spec's"],
    )


def trace(item: Exportable, target: str) -> ExportedProgram:
    """``torch.export.export`` of the model on the example batch, batch dynamic, quietly; a
    SpecError naming the source (and ``target``, in words) when the spec's shapes or torch refuse."""
    import torch

    check_batch_free(item)
    example = example_input(item)
    with quiet():
        try:
            return torch.export.export(item.model, (example,), dynamic_shapes=dynamic_batch())
        except Exception as exc:  # torch's limits: data-dependent control flow, a fixed batch, ...
            raise export_failure(item, target, exc) from None


def batch_symbol(program: ExportedProgram) -> str:
    """The name torch gave the batch dimension in ``program`` (``s77``): the input's dimension 0."""
    names = set(program.graph_signature.user_inputs)
    (given,) = (n for n in program.graph.nodes if n.op == "placeholder" and n.name in names)
    return str(given.meta["val"].shape[0])
