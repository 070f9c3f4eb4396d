"""Leaf modules -> spec layers: which classes are torchspec layers, and their arguments read back.

A module is a leaf when its class is the torch class of a registered layer (``torch.nn.Conv2d``,
torchspec's own ``Add``...), one of torchvision's classes that torchspec reproduces (StochasticDepth,
ConvNeXt's LayerNorm2d, ``ops.Permute``), or a subclass of one that changes neither ``forward`` nor
the convolution's ``_conv_forward`` (torchvision's ``Conv3DSimple`` is a ``Conv3d``).

A layer's fields are torch's constructor arguments, and torch keeps each as an attribute of the
same name (``kernel_size``, ``eps``, ``inplace``); the few it does not keep are read from what it
keeps instead (``bias``: whether the bias tensor exists). Sizes torchspec infers from the incoming
shape (``in_channels``...) and arguments equal to the default are left out, so the spec reads as
one would write it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticUndefined
from torch import nn

from torchspec.importing.errors import ImportFailure
from torchspec.layers import REGISTRY, load_all

__all__ = ["INFERRED", "layer_type", "leaf_layer"]

# Sizes torchspec infers from the incoming shape (README, "The spec format"): left out.
INFERRED = frozenset(
    {"in_channels", "in_features", "num_features", "num_channels", "input_size", "embed_dim"}
    | {"d_model", "in1_features", "in2_features"}
)
# torchvision classes computing exactly what torchspec's layer of the same name computes
_TORCHVISION = {
    "StochasticDepth": ("torchvision.ops.stochastic_depth", "StochasticDepth"),
    "LayerNorm2d": ("torchvision.models.convnext", "LayerNorm2d"),
    "Permute": ("torchvision.ops.misc", "Permute"),
}
# torch's order: positional arguments, the window sizes, then the rest as declared (a stable sort)
_SIZES = ("kernel_size", "stride", "padding", "output_padding", "dilation")
# what the docstring of a file torchspec export --to python wrote says
_EXPORTED = "exported by torchspec from "
# methods a subclass may not override and still be its base layer
_BEHAVIOUR = ("forward", "_conv_forward", "extra_repr")


@functools.cache
def _known() -> dict[type, str]:
    load_all()
    known: dict[type, str] = {}
    for name in REGISTRY:
        cls = REGISTRY[name]
        if getattr(cls, "container", False) or cls.learned_tensor:
            continue
        obj = getattr(importlib.import_module(cls.torch_home), name, None)
        if isinstance(obj, type):
            known[obj] = name
        if "causal" in cls.spec_fields:  # causal: true's class (torchspec.nn.CausalMultiheadAttention)
            known[getattr(importlib.import_module("torchspec.nn"), f"Causal{name}")] = name
    for name, (module, attr) in _TORCHVISION.items():
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):  # torchvision is optional
            continue
        known[obj] = name
    return known


def _exported(cls: type) -> str | None:
    """torchspec's own layer a ``torchspec export --to python`` file defines for itself (its
    standalone LayerNorm2d, Permute, StochasticDepth...: same name, same arguments), else None."""
    name = _causal_base(cls) or cls.__name__
    home = sys.modules.get(cls.__module__)
    if name not in REGISTRY or home is None or _EXPORTED not in (home.__doc__ or ""):
        return None
    if name != cls.__name__:  # its CausalMultiheadAttention: a MultiheadAttention, causal: true
        return name
    return name if REGISTRY[name].torch_home == "torchspec.nn" else None


def _causal_base(cls: type) -> str | None:
    """``MultiheadAttention`` for a class named ``CausalMultiheadAttention`` (a layer with
    ``causal``), else None."""
    base = cls.__name__.removeprefix("Causal")
    if base == cls.__name__ or base not in REGISTRY or "causal" not in REGISTRY[base].spec_fields:
        return None
    return base


def _causal(module: nn.Module) -> bool:
    """Whether ``module`` is the causal class of its layer: torchspec.nn's, or an exported file's."""
    for cls in type(module).__mro__:
        if _causal_base(cls) is not None and (
            cls.__module__ == "torchspec.nn_attention" or _exported(cls) is not None
        ):
            return True
    return False


def layer_type(module: nn.Module) -> str | None:
    """The layer type ``module`` is, or None (a container, or a module of the model's own)."""
    known = _known()
    for cls in type(module).__mro__:
        if cls in known:
            return known[cls]
        if _exported(cls) is not None:
            return _exported(cls)
        if any(method in cls.__dict__ for method in _BEHAVIOUR):
            return None
    return None


def _bias(module: nn.Module) -> bool:
    return getattr(module, "bias", None) is not None


# (type, field) -> how to read it where torch does not keep the argument itself; None: not kept
# and not needed (the weights carry it: PReLU's init value)
_READERS: dict[tuple[str, str], Callable[[Any], Any] | None] = {
    ("MultiheadAttention", "bias"): lambda m: m.in_proj_bias is not None,
    ("MultiheadAttention", "add_bias_kv"): lambda m: m.bias_k is not None,
    ("MultiheadAttention", "kdim"): lambda m: None if m.kdim == m.embed_dim else m.kdim,
    ("MultiheadAttention", "vdim"): lambda m: None if m.vdim == m.embed_dim else m.vdim,
    ("PReLU", "init"): None,
}
for _layer in ("MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer"):
    _READERS[(_layer, "causal")] = _causal  # torchspec's field: torch keeps no such argument
for _layer in ("TransformerEncoder", "TransformerDecoder"):
    _READERS[(_layer, "causal")] = _causal
for _layer in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
    _READERS.update(
        {
            (_layer, "nhead"): lambda m: m.self_attn.num_heads,
            (_layer, "dim_feedforward"): lambda m: m.linear1.out_features,
            (_layer, "dropout"): lambda m: m.dropout.p,
            (_layer, "activation"): lambda m: _activation(m.activation),
            (_layer, "layer_norm_eps"): lambda m: m.norm1.eps,
            (_layer, "batch_first"): lambda m: m.self_attn.batch_first,
            (_layer, "bias"): lambda m: m.linear1.bias is not None,
        }
    )
for _stack, _inner in (("TransformerEncoder", "encoder_layer"), ("TransformerDecoder", "decoder_layer")):
    _READERS.update(
        {
            (_stack, _inner): lambda m: leaf_layer("layers.0", m.layers[0]),
            (_stack, "norm"): lambda m: None if m.norm is None else leaf_layer("norm", m.norm),
        }
    )


def _activation(function: Any) -> str:
    """A Transformer layer's activation as its argument: torch keeps the function (or module)."""
    import torch.nn.functional as F

    if function is F.relu or isinstance(function, nn.ReLU):
        return "relu"
    if function is F.gelu or (isinstance(function, nn.GELU) and function.approximate == "none"):
        return "gelu"
    raise ImportFailure(f"a Transformer layer's activation {function!r} is not 'relu' or 'gelu'")


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _compact(value: Any) -> Any:
    """``[3, 3]`` -> ``3`` (torch's convention: one int stands for every dimension)."""
    if isinstance(value, list) and value and all(v == value[0] and type(v) is int for v in value):
        return value[0]
    return value


def _read(type_name: str, field: str, module: nn.Module, path: str) -> Any:
    if (type_name, field) in _READERS:
        reader = _READERS[(type_name, field)]
        return PydanticUndefined if reader is None else reader(module)
    if field == "bias" and isinstance(getattr(module, "bias", None), (nn.Parameter, type(None))):
        return _bias(module)
    if not hasattr(module, field):
        raise ImportFailure(
            f"{path} ({type(module).__name__}): torch does not keep its argument {field!r}, so "
            f"torchspec import cannot read it back",
            hints=[f"write this {type_name} by hand in the spec"],
        )
    value = getattr(module, field)
    if isinstance(value, nn.Module) or hasattr(value, "shape"):
        raise ImportFailure(
            f"{path} ({type(module).__name__}): its argument {field!r} is a module or a tensor, "
            "which torchspec import does not read back",
            hints=[f"write this {type_name} by hand in the spec"],
        )
    return _plain(value)


def leaf_layer(path: str, module: nn.Module) -> dict[str, Any]:
    """``{"type": ..., field: value, ...}`` for the leaf module at ``path`` (no name)."""
    type_name = layer_type(module)
    assert type_name is not None
    cls = REGISTRY[type_name]
    data: dict[str, Any] = {"type": type_name}
    first = {name: i for i, name in enumerate((*cls.positional, *_SIZES))}
    fields = sorted(cls.model_fields.items(), key=lambda kv: first.get(kv[0], len(first)))
    for field, info in fields:
        if field in ("type", "name", "from_") or field in INFERRED:
            continue
        value = _read(type_name, field, module, path)
        if value is PydanticUndefined:
            continue
        default = info.default
        if default is not PydanticUndefined and _compact(_plain(default)) == _compact(value):
            continue
        data[field] = value
    compact = {k: _compact(v) for k, v in data.items()}
    for candidate in (compact, data):
        try:
            cls.model_validate(candidate)
        except ValidationError as exc:
            problem = exc.errors()[0]
            error = f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            continue
        return candidate
    raise ImportFailure(
        f"{path} ({type(module).__name__}): its arguments are not a valid {type_name} layer ({error})"
    )
