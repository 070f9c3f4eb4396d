"""The batch dimension through a graph: which tensors carry it, and where mixing is unsound.

Every tensor in a spec's graph carries the batch in dimension 0, except a learned tensor
(``Parameter``, e.g. ViT's class token ``[1, 1, 768]``) and what layers compute from it alone. Shape
inference runs at one batch size (1 for ``check``), where ``[1, 1, 768]`` and a batch of one look
alike; these rules make a spec that checks at one batch size run at every batch size:

* a layer reading only batched tensors gives a batched one; only unbatched ones, an unbatched one;
* ``Add``/``Mul`` (``batch_rule = "broadcast"``) spread an unbatched input over the batch, as torch
  broadcasts, if its dimension that lines up with the batch is 1 (or it has fewer dimensions):
  ViT's ``[1, 197, 768]`` position embedding, ConvNeXt's ``[96, 1, 1]`` layer scale;
* ``ExpandBatch`` (``"expand"``) gives its first input the batch of its second: the class token;
* any other layer mixing batched and unbatched inputs (Concat, attention...) is an error: torch
  would run it only at the one batch size the learned tensor happens to have.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchspec.layers.base import Layer, Shape, ShapeError

__all__ = ["batched_output"]


def batched_output(layer: Layer, shapes: Sequence[Shape], batched: Sequence[bool]) -> bool:
    """Whether ``layer``'s output carries the batch dimension, given its inputs' ``shapes`` and
    which of them do; a ShapeError (``{inK}`` for input K) where the mix only works at one batch."""
    if layer.learned_tensor:
        return False
    if all(batched):
        return True
    rule = type(layer).batch_rule
    if rule == "expand":  # (tensor, like): the tensor takes like's batch
        if batched[0] and not batched[1]:
            raise ShapeError(
                "{in0} has a batch dimension but {in1}, whose batch it would take, has none",
                field="from",
                hints=["the second input gives the batch size: name a batched tensor there"],
            )
        if not batched[0] and shapes[0][0] != 1:
            raise ShapeError(
                f"{{in0}} has no batch dimension and its dimension 0 is {shapes[0][0]}; only a "
                "dimension of size 1 expands to the batch",
                field="from",
                hints=["give the learned tensor a leading 1, e.g. shape: [1, ...]"],
            )
        return batched[1]
    if not any(batched):
        return False
    if rule == "broadcast":
        rank = max(len(s) for s in shapes)
        for i, (shape, has) in enumerate(zip(shapes, batched)):
            if not has and len(shape) == rank and shape[0] != 1:
                raise ShapeError(
                    f"{{in{i}}} has no batch dimension, yet its dimension 0 ({shape[0]}) lines up "
                    "with the batch of the other inputs; it broadcasts over the batch only with "
                    "size 1 there (or with fewer dimensions)",
                    field="from",
                    hints=[f"give the learned tensor a leading 1: shape: {[1, *shape[1:]]}"],
                )
        return True
    free = list(batched).index(False)
    other = list(batched).index(True)
    raise ShapeError(
        f"{{in{free}}} has no batch dimension (a learned tensor, or computed from one) but "
        f"{{in{other}}} has one; {layer.type_name()} would run only at one batch size",
        field="from",
        hints=[
            "expand it over the batch first: {type: ExpandBatch, from: [TENSOR, BATCHED]}, "
            "or combine them with Add or Mul, which broadcast"
        ],
    )
