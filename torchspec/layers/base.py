"""The layer contract and the registry.

A layer is one pydantic model: its fields are the torch constructor's keyword arguments (same names,
same defaults), ``infer`` is its shape rule in pure Python, and ``torch.nn.<type>(**args)`` is how it
becomes a module. Registering a class is all it takes to add a layer: the spec schema, the CLI, the
builder and the registry-wide truth test pick it up.

Shapes here always include the batch dimension, exactly as torch sees them: ``(N, C, D, H, W)``.

What ``infer`` returns (:class:`Inferred`) is the contract a layer keeps with the rest of torchspec:
the output shape, parameter and buffer element counts, MACs, the inferred constructor arguments and
``state``, the layer's analytic ``state_dict``: every tensor name, relative to the layer, mapped to
its shape, in torch's order (parameters, then buffers): ``{"weight": (64, 3, 3, 3), "bias": (64,)}``
for a Conv2d, ``{}`` for a layer without state, ``num_batches_tracked: ()`` for a 0-d buffer,
``{"": (1, 1, 768)}`` for a learned tensor (the key is the layer's own path: ``class_token``). Readers
of checkpoints and .safetensors files compare a file's tensors with it before building anything.
The truth sweep (tests/test_truth.py) checks all of it against the real module for every registered
layer, ``state`` included (names and shapes exactly as ``module.state_dict()``).

Graphs (the contract every layer follows):

* ``arity`` = (min, max) inputs (max None: any). One-input layers implement ``infer(shape)``;
  layers with several inputs implement ``infer_many(shapes)``, which the graph always calls.
* A layer whose torch forward returns a tuple sets ``Inferred.outputs`` to a :class:`TupleOut`
  (nested as torch nests it) and ``Inferred.shape`` to its first tensor, which is what the next
  layer reads by default; ``from: lstm.1.0`` takes another element (name, then indices).
* A learned tensor (``learned_tensor``, the ``Parameter`` layer) has no input and no batch
  dimension; ``batch_rule`` says how layers combine it with batched tensors
  (:mod:`torchspec.layers.batch`).
* ``torch_factory()`` is the class the layer becomes (``torch.nn.<type>`` by default; torchspec's
  own merge and tensor layers return a module of :mod:`torchspec.nn`); ``torch_module(args)``
  instantiates it. A field of torchspec's own that torch's constructor lacks is in ``spec_fields``:
  ``torch_class(args)`` reads it to pick the class (``causal: true``: torchspec's subclass of the
  torch class) and the constructor never sees it. The builder has no per-type code.

This module gathers the contract for the family modules; it is defined in
:mod:`~torchspec.layers.shapes` (shapes, :class:`Inferred`, :class:`ShapeError` and the helpers
rules share), :mod:`~torchspec.layers.names` (``name:`` and ``from:``), :mod:`~torchspec.layers.layer`
(:class:`Layer`) and :mod:`~torchspec.layers.registry` (:data:`REGISTRY`, :func:`register`).
"""

from torchspec.layers.layer import InlineLayer, Layer, build_inline
from torchspec.layers.names import RESERVED, From, ModuleName, Ref
from torchspec.layers.registry import REGISTRY, Registry, register
from torchspec.layers.shapes import (
    SPATIAL_LAYOUTS,
    Inferred,
    Out,
    Shape,
    ShapeError,
    TupleOut,
    checked_dim,
    expand,
    first_tensor,
    fmt_shape,
    fmt_size,
    prod,
    spatial_name,
    tensors_of,
)

__all__ = [
    "REGISTRY",
    "RESERVED",
    "SPATIAL_LAYOUTS",
    "From",
    "Inferred",
    "InlineLayer",
    "Layer",
    "ModuleName",
    "Out",
    "Ref",
    "Registry",
    "Shape",
    "ShapeError",
    "TupleOut",
    "build_inline",
    "checked_dim",
    "expand",
    "first_tensor",
    "fmt_shape",
    "fmt_size",
    "prod",
    "register",
    "spatial_name",
    "tensors_of",
]
