"""``--to onnx``: one self-contained .onnx file (weights inside), batch dimension dynamic.

The model is traced as for ``--to exported-program`` (:func:`torchspec.export.trace.trace`: an
example batch of 2, dimension 0 marked ``batch``, 1 or more) and that ExportedProgram translated
by torch's dynamo exporter (``torch.onnx.export``, which needs ``onnxscript``), so the file's
input is ``input`` of shape ``[batch, *spec input]`` (float32, or int64 token ids) and its output
``output`` of shape ``[batch, ...]``. Every weight and buffer (BatchNorm's running statistics) is
an initializer inside the file: the trained weights for a MODEL file (onnxscript's optimizer folds
a BatchNorm into the convolution before it, so ``conv.weight`` may hold the folded weight; the
outputs are the model's). Models whose weights pass 1536 MiB (torch's limit for weights inside
the file; ONNX's protobuf cannot hold 2 GiB) are refused: ``--to exported-program`` exports them.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from torchspec.errors import SpecError
from torchspec.export import Exportable
from torchspec.export.trace import batch_symbol, export_failure, quiet, trace
from torchspec.fileio import atomic_path

if TYPE_CHECKING:
    from torch.onnx import ONNXProgram

__all__ = ["INLINE_LIMIT", "missing", "summary", "write_onnx"]

INLINE_LIMIT = 1536 * 1024 * 1024  # bytes of weights torch.onnx still saves inside the file
NEEDS = ("onnx", "onnxscript")  # the dynamo exporter's translation; onnxruntime only runs the file
EXTRA = 'pip install "torchspec[onnx]"'


def missing() -> str | None:
    """Why ``--to onnx`` cannot run here (a module of the ``onnx`` extra is not installed), or None."""
    for name in NEEDS:
        try:
            importlib.import_module(name)
        except ImportError:
            return f"--to onnx needs the onnx extra ({name} is not installed): {EXTRA}"
    return None


def write_onnx(item: Exportable, out: Path) -> list[Path]:
    """Write ``item``'s model to ``out`` (.onnx) atomically; returns ``[out]``.

    Raises ImportError when the onnx extra is missing, and a SpecError naming the source when the
    model cannot take any batch size, is too large for one ONNX file, or torch cannot export it
    (no file is left behind then).
    """
    import torch

    reason = missing()
    if reason is not None:
        raise ImportError(reason)
    if item.report.param_bytes > INLINE_LIMIT:
        size = item.report.param_bytes / 2**30
        raise SpecError.single(
            item.source,
            f"cannot export {item.source} to ONNX: its weights ({size:.2f} GiB) do not fit in one ONNX "
            f"file (at most {INLINE_LIMIT // 2**20} MiB)",
            hints=["--to exported-program writes models of any size"],
        )
    # the temporary file is created first: an unwritable folder fails before the slow export
    with atomic_path(out) as tmp:
        program = trace(item, "ONNX")
        with quiet():
            try:  # the same trace as --to exported-program, translated to ONNX
                onnx_program = torch.onnx.export(
                    program,
                    input_names=["input"],
                    output_names=["output"],
                    external_data=False,
                    verbose=False,
                )
            except Exception as exc:  # an op without an ONNX translation, ...
                raise export_failure(item, "ONNX", exc, ["--to exported-program exports it"]) from None
            assert onnx_program is not None  # dynamo=True (the default) always returns the program
            _name_batch(onnx_program, batch_symbol(program))
            onnx_program.save(tmp, external_data=False)
        _check(item, tmp)
    return [out]


def _name_batch(program: ONNXProgram, symbol: str) -> None:
    """Call torch's batch symbol (``s77``) ``batch`` in every shape of the ONNX graph: the input is
    ``[batch, ...]``, an inner shape ``[24*batch, 32]``, as ``dynamic_shapes`` named it."""
    import onnx_ir as ir

    pattern = re.compile(rf"\b{re.escape(symbol)}\b")
    graph = program.model.graph
    for value in [*graph.inputs, *(v for node in graph for v in node.outputs)]:
        if value.shape is None:
            continue
        dims = [
            ir.SymbolicDim(pattern.sub("batch", d.value)) if isinstance(d, ir.SymbolicDim) and d.value else d
            for d in value.shape
        ]
        value.shape = ir.Shape(dims)


def _check(item: Exportable, path: str) -> None:
    """onnx's own checker on the written file (before it is renamed into place)."""
    import onnx

    try:
        onnx.checker.check_model(path, full_check=False)
    except onnx.checker.ValidationError as exc:  # pragma: no cover - torch wrote an invalid model
        raise export_failure(item, "ONNX", exc) from None


def summary(path: Path) -> str:
    """``ONNX opset 20, 245.12 kB, input int64 [batch, 24]``: for the command's ``wrote`` line."""
    import onnx

    from torchspec.report import format_bytes

    model = onnx.load(os.fspath(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    parts = [f"ONNX opset {opset}", format_bytes(os.path.getsize(path))]
    if model.graph.input:
        tensor = model.graph.input[0].type.tensor_type
        dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
        kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        parts.append(f"input {kind} [{', '.join(dims)}]")
    return ", ".join(parts)
