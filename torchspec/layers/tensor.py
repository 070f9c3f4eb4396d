"""Learned tensors and their batch: Parameter (a tensor the container holds, not a layer) and
ExpandBatch (gives a learned tensor the batch of another). Both are torchspec's own
(:mod:`torchspec.nn`).

A ``Parameter`` is what a model keeps as ``self.class_token = nn.Parameter(...)``: its
``shape`` is the tensor's whole shape (there is no batch dimension to add), its state_dict key is
its own path (``class_token``, ``encoder.pos_embedding``, ``features.1.0.layer_scale``), and it
reads nothing; layers read it by name with ``from:``. See :mod:`torchspec.layers.batch` for how
it meets batched tensors.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from torchspec.layers.base import Inferred, Layer, Shape, ShapeError, checked_dim, prod, register
from torchspec.layers.fields import Float, PosFloat, PosInt

__all__ = ["ExpandBatch", "Parameter"]

INITS = ("zeros", "ones", "constant", "normal")


@register
class Parameter(Layer):
    """A learned tensor of ``shape``, initialised by ``init``: zeros (torch's ``torch.zeros``),
    ones, constant (every element ``value``) or normal (``mean``, ``std``), drawn in file order
    from the build's seed. It counts as ``prod(shape)`` parameters and has no MACs."""

    type: Literal["Parameter"] = "Parameter"
    torch_home: ClassVar[str] = "torchspec.nn"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)
    learned_tensor: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("shape",)

    shape: Annotated[list[PosInt], Field(min_length=1, max_length=8, description="the tensor's shape")]
    init: Literal["zeros", "ones", "constant", "normal"] = "zeros"
    value: Float | None = Field(default=None, description="every element's value (init: constant)")
    mean: Float = Field(default=0.0, description="the mean (init: normal)")
    std: PosFloat = Field(default=1.0, description="the standard deviation (init: normal)")

    @model_validator(mode="after")
    def _init_fields(self) -> Parameter:
        # a field the chosen init ignores is a mistake (std: 0.02 with init: zeros is no normal)
        used = {"constant": {"value"}, "normal": {"mean", "std"}}.get(self.init, set())
        stray = sorted(k for k in ("value", "mean", "std") if k in self.model_fields_set and k not in used)
        if stray:
            raise PydanticCustomError(
                "parameter_init",
                "{fields} set but init is '{init}', which ignores {them}; value goes with init: "
                "constant, mean and std with init: normal",
                {"fields": ", ".join(stray), "init": self.init, "them": "it" if len(stray) == 1 else "them"},
            )
        if self.init == "constant" and self.value is None:
            raise PydanticCustomError(
                "parameter_init", "init: constant needs `value:` (every element's value)", {}
            )
        return self

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        shape = tuple(self.shape)
        count = checked_dim(prod(shape), "the tensor's element count")
        return Inferred(shape, params=count, state={"": shape})

    def infer(self, shape: Shape) -> Inferred:  # pragma: no cover - the graph calls infer_many
        return self.infer_many([])


@register
class ExpandBatch(Layer):
    """``x.expand(like.shape[0], ...)``: reads ``[x, like]`` and gives ``x``'s dimension 0 (size 1)
    the batch size of ``like``, a view, no copy: ViT's class token ``[1, 1, E]`` becomes
    ``[N, 1, E]`` before it is concatenated to the patches (``{type: ExpandBatch, from:
    [class_token, patches]}``)."""

    type: Literal["ExpandBatch"] = "ExpandBatch"
    torch_home: ClassVar[str] = "torchspec.nn"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    aliases_input: ClassVar[bool] = True
    batch_rule: ClassVar[str] = "expand"

    def infer_many(self, shapes: list[Shape]) -> Inferred:
        x, like = shapes
        if x[0] not in (1, like[0]):
            raise ShapeError(
                f"dimension 0 of {{in0}} is {x[0]}; it expands to the batch of {{in1}} ({like[0]}) "
                "only from size 1",
                field="from",
                hints=["give the tensor a leading 1, e.g. shape: [1, ...]"],
            )
        return Inferred((like[0], *x[1:]))

    def infer(self, shape: Shape) -> Inferred:  # pragma: no cover - arity 2
        return self.infer_many([shape, shape])
