"""The fine-tuning keys of the ``train`` section: ``init``, ``freeze``, ``param_groups``. Torch-free.

Names are parameter names as in the model's ``state_dict`` (``conv1.weight``, ``layer4.1.bn2.bias``,
``fc.weight``); a pattern is a shell-style glob (``fc.*``, ``layer[34].*``) or a module prefix
(``layer4`` means ``layer4.*``). See :mod:`torchspec.training.finetune`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["EmaConfig", "Init", "ParamGroup", "Pattern"]

Pattern = Annotated[str, Field(min_length=1, description="a parameter name glob (fc.*) or a module prefix")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _bare_path(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class _Init(_Strict):
    """Start from saved weights (a fresh run only; a resume continues from its checkpoint)."""

    path: Annotated[
        str,
        Field(min_length=1, description=".safetensors, a torchspec .ckpt, or a state_dict .pt/.pth"),
    ]
    new: list[Pattern] = Field(
        default=[],
        description="model tensors trained from scratch: not in the file or reshaped (a new head)",
    )
    strict: bool = Field(
        default=True,
        description="false: load every tensor that fits, report the rest (missing, other shapes, unused)",
    )


Init = Annotated[_Init, BeforeValidator(_bare_path)]


class ParamGroup(_Strict):
    """Optimizer settings for the parameters matching ``params`` (the first matching group wins)."""

    params: Annotated[list[Pattern], Field(min_length=1)]
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None, description="default: the optimizer's lr"
    )
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None, description="default: the optimizer's weight_decay"
    )


class EmaConfig(_Strict):
    """An exponential moving average of the weights (timm's ModelEmaV2), validated and saved."""

    decay: Annotated[float, Field(gt=0, lt=1, description="per optimizer step, e.g. 0.999")] = 0.999
