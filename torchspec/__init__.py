"""torchspec: declarative PyTorch models. Write layers as YAML or JSON, check every shape by
arithmetic (no torch needed), get errors at file:line:col, compile to ``torch.nn.Sequential``
(a ``torch.fx.GraphModule`` when wired with ``from:``).

Importing this package does not import torch; only :func:`build`, :func:`load_model` and the
training entry points do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torchspec.errors import Problem, SpecError
from torchspec.infer import LayerRow, ShapeReport, infer_shapes
from torchspec.spec import Spec, load_spec

if TYPE_CHECKING:
    from torchspec.builder import build, load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "LayerRow",
    "Problem",
    "ShapeReport",
    "Spec",
    "SpecError",
    "__version__",
    "build",
    "infer_shapes",
    "load_model",
    "load_spec",
    "save_model",
    "train",
]

_LAZY = {
    "build": "torchspec.builder",
    "load_model": "torchspec.builder",
    "save_model": "torchspec.builder",
    "train": "torchspec.training.loop",
}


def __getattr__(name: str) -> Any:
    # torch-backed entry points load on first use, keeping `import torchspec` torch-free.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'torchspec' has no attribute {name!r}")
