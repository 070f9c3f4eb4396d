"""Shared pieces of the ``train`` section's models (torch-free): the strict base, bounded numbers,
the seed, and the bare-string shorthand (``Adam`` for ``{type: Adam}``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["SEED_MAX", "Float", "Fraction", "NonNegFloat", "Seed", "Strict", "bare"]

Float = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
SEED_MAX = 2**63 - 1  # torch.manual_seed and numpy take it; train.seed feeds both


def _seed_in_range(value: int) -> int:
    if not 0 <= value <= SEED_MAX:
        raise ValueError(f"seed must be in [0, 2**63 - 1] (0 .. {SEED_MAX})")
    return value


Seed = Annotated[int, AfterValidator(_seed_in_range), Field(description="an integer in [0, 2**63 - 1]")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def bare(tag: str) -> Any:
    """A bare string stands for ``{tag: value}``, as for layers."""
    return BeforeValidator(lambda value: {tag: value} if isinstance(value, str) else value)
