"""``--to exported-program``: a ``torch.export`` ExportedProgram saved with ``torch.export.save``
(a .pt2 archive: the graph, the weights and buffers, the batch dimension dynamic).

Load it with ``torch.export.load(path).module()`` and call that on a ``[batch, *input]`` tensor,
batch 1 or more; no torchspec needed. The trace is the same as ``--to onnx``'s
(:mod:`torchspec.export.trace`), so a model exports to both or to neither for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from torchspec.export import Exportable
from torchspec.export.trace import quiet, trace
from torchspec.fileio import atomic_path

__all__ = ["summary", "write_program"]


def write_program(item: Exportable, out: Path) -> list[Path]:
    """Trace ``item``'s model with a dynamic batch and save it to ``out`` (.pt2) atomically;
    returns ``[out]``. A SpecError naming the source when torch cannot export the model or the
    spec's shapes depend on the batch size (no file is left behind then)."""
    import torch

    # the temporary file is created first: an unwritable folder fails before the slow trace
    with atomic_path(out) as tmp:
        program = trace(item, "an ExportedProgram")
        with quiet():
            torch.export.save(program, tmp)
    return [out]


def summary(path: Path) -> str:
    """``ExportedProgram, 245.12 kB``: for the command's ``wrote`` line."""
    from torchspec.report import format_bytes

    return f"ExportedProgram, {format_bytes(os.path.getsize(path))}"
