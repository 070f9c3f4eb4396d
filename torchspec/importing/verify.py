"""The written spec checked against the model it came from, before anything is written.

The spec is validated and its shapes inferred (what ``torchspec check`` does), built on the meta
device (no memory) and compared with the model: the same state_dict keys with the same shapes, each
leaf module printing the same arguments (``repr``), and the same output shape at batch 2. A
mismatch is an error: a spec that would not load the model's weights is never written.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from torchspec.errors import SpecError
from torchspec.importing.errors import ImportFailure
from torchspec.importing.leaves import layer_type

__all__ = ["verify"]

_WHOLE = re.compile(r"(?<![\w.])(-?\d+)\.0(?![\d.e])")
_REPEATED = re.compile(r"\((-?\d+)(?:, \1)*,?\)")


def _args(module: nn.Module) -> str:
    """What ``repr`` shows inside the parentheses, with ``output_size=(1, 1)`` as
    ``output_size=1`` (the spec writes one int for equal sizes)."""
    text = _REPEATED.sub(r"\1", repr(module).partition("(")[2].removesuffix(")"))
    return _WHOLE.sub(r"\1", text)  # beta=2 as torch keeps it, 2.0 as the spec reads it


def verify(data: dict[str, Any], model: nn.Module, output: tuple[int, ...]) -> None:
    """Raise :class:`ImportFailure` unless ``data`` reproduces ``model`` (``output``: at batch 2)."""
    from torchspec.builder import build_from_report
    from torchspec.infer import infer_shapes
    from torchspec.spec import load_spec

    try:
        report = infer_shapes(load_spec(data), batch=2)
    except SpecError as err:
        raise ImportFailure(f"the spec written from the model does not check:\n{err}") from None
    if tuple(report.output) != tuple(output):
        raise ImportFailure(
            f"the spec computes {list(report.output)} at batch 2, the model {list(output)} (a torchspec bug)"
        )
    built = build_from_report(report, device="meta")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    if want != got:
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        shapes = [k for k in want if k in got and want[k] != got[k]][:3]
        raise ImportFailure(
            f"the spec's state_dict would differ from the model's (missing {missing}, extra {extra}, "
            f"other shapes {shapes}); a torchspec bug"
        )
    mine = dict(built.named_modules())
    for path, module in model.named_modules():
        if layer_type(module) is None or path not in mine:
            continue
        given, made = _args(module), _args(mine[path])
        if given and given != made:  # (a class printing no arguments: its attributes were read)
            raise ImportFailure(
                f"{path}: the spec builds {mine[path]!r} where the model has {module!r} (a torchspec bug)"
            )
