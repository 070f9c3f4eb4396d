"""Per-family layer tests: concrete cases against the real torch modules, spec-level validation
errors, and the registry's agreement with torch's constructors (names, keywords, defaults)."""

from __future__ import annotations

import inspect
import itertools
import math
import re
import subprocess
import sys
import typing
import warnings
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from torchspec.builder import build, verify_on_meta
from torchspec.errors import SpecError
from torchspec.infer import infer_shapes
from torchspec.layers import REGISTRY, Inferred, Layer, Shape, ShapeError
from torchspec.layers.base import RESERVED

# Fields a rule infers from the incoming shape: optional here, required by torch.
INFERABLE = {
    "in_channels",
    "in_features",
    "num_features",
    "num_channels",
    "input_size",
    "embed_dim",
    "d_model",
    "in1_features",
    "in2_features",
    "normalized_shape",  # LayerNorm2d: the channels
}


def L(type_name: str, **fields: Any) -> dict[str, Any]:
    """Spec data for one layer: ``L("Conv2d", out_channels=8, kernel_size=3)``."""
    return {"type": type_name, **fields}


def layer(data: dict[str, Any]) -> Layer:
    return REGISTRY[data["type"]].model_validate(data)


def torch_module(data: dict[str, Any], shape: Shape) -> torch.nn.Module:
    """The torch module for ``data`` with the arguments the rule infers (or would infer)."""
    spec = layer(data)
    try:
        args = spec.torch_args(spec.infer(shape))
    except ShapeError:
        args = spec.torch_args(Inferred(shape))
    sig = inspect.signature(getattr(torch.nn, data["type"])).parameters
    for name in INFERABLE & set(sig) - set(args):
        args[name] = shape[-1] if name == "in_features" else shape[1]
    return getattr(torch.nn, data["type"])(**args).eval()


def run(module: torch.nn.Module, shape: Shape) -> torch.Tensor:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return module(torch.randn(shape))


def agree(data: dict[str, Any], shape: Shape) -> Inferred:
    """The rule's shape, parameters and buffers equal torch's; returns the rule's result."""
    inferred = layer(data).infer(shape)
    module = torch_module(data, shape)
    assert tuple(run(module, shape).shape) == inferred.shape
    assert sum(p.numel() for p in module.parameters()) == inferred.params
    assert sum(b.numel() for b in module.buffers()) == inferred.buffers
    return inferred


def both_reject(data: dict[str, Any], shape: Shape, field: str | None = None) -> ShapeError:
    """The rule raises ShapeError (blaming ``field``) and torch fails as well."""
    with pytest.raises(ShapeError) as info:
        layer(data).infer(shape)
    assert "{incoming}" in info.value.message
    if field is not None:
        assert info.value.field == field
    with pytest.raises(Exception):  # noqa: B017 - torch's exception types vary
        run(torch_module(data, shape), shape)
    return info.value


def invalid(data: dict[str, Any], kind: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        layer(data)
    assert kind in {e["type"] for e in info.value.errors()}, info.value.errors()
    return info.value


def torch_refuses(data: dict[str, Any], shape: Shape) -> None:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "type"}
    with pytest.raises((ValueError, RuntimeError, TypeError, IndexError)):
        run(getattr(torch.nn, data["type"])(**kwargs), shape)


# -- convolutions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "shape", "out"),
    [
        (
            L("Conv2d", out_channels=8, kernel_size=3, padding=1),
            (2, 3, 16, 16),
            (2, 8, 16, 16),
        ),
        (
            L("Conv1d", out_channels=4, kernel_size=3, stride=2, dilation=2),
            (1, 2, 11),
            (1, 4, 4),
        ),
        (
            L("Conv2d", out_channels=2, kernel_size=[4, 2], padding="same", dilation=2),
            (1, 1, 7, 6),
            (1, 2, 7, 6),
        ),
        (
            L("Conv2d", out_channels=2, kernel_size=4, padding="same", padding_mode="reflect"),
            (1, 1, 3, 5),
            (1, 2, 3, 5),
        ),
        (
            L("Conv2d", out_channels=2, kernel_size=3, padding="valid"),
            (1, 1, 5, 6),
            (1, 2, 3, 4),
        ),
        (
            L("Conv2d", out_channels=6, kernel_size=3, groups=3, bias=False),
            (1, 3, 5, 5),
            (1, 6, 3, 3),
        ),
        (
            L("Conv3d", out_channels=4, kernel_size=[1, 3, 3], padding=[0, 1, 1]),
            (1, 3, 4, 8, 8),
            (1, 4, 4, 8, 8),
        ),
        (
            L("ConvTranspose2d", out_channels=3, kernel_size=3, stride=2, padding=1, output_padding=1),
            (2, 4, 5, 5),
            (2, 3, 10, 10),
        ),
        (
            L("ConvTranspose1d", out_channels=2, kernel_size=2, stride=1, dilation=3, output_padding=2),
            (1, 2, 4),
            (1, 2, 9),
        ),
        (
            L("ConvTranspose3d", out_channels=2, kernel_size=2, stride=2, groups=2),
            (1, 4, 2, 3, 1),
            (1, 2, 4, 6, 2),
        ),
    ],
)
def test_conv_cases(data: dict[str, Any], shape: Shape, out: Shape) -> None:
    inferred = agree(data, shape)
    assert inferred.shape == out
    module = torch_module(data, shape)
    positions = shape[2:] if "Transpose" in data["type"] else out[2:]
    assert inferred.macs == module.weight.numel() * shape[0] * math.prod(positions)


def test_conv_params_and_inferred_in_channels() -> None:
    inferred = agree(L("Conv2d", out_channels=8, kernel_size=3), (1, 3, 8, 8))
    assert inferred.params == 3 * 8 * 9 + 8
    assert inferred.args == {"in_channels": 3}


def test_conv_1d_grid_matches_torch() -> None:
    """Every small Conv1d/ConvTranspose1d combination: same output length, or both refuse it."""
    paddings: list[Any] = [0, 1, 2, 3, 5, "same", "valid"]
    modes = ("zeros", "reflect", "replicate", "circular")
    for length, k, s, p, d, mode in itertools.product(
        range(1, 6), (1, 2, 3), (1, 2), paddings, (1, 2), modes
    ):
        data = L("Conv1d", out_channels=1, kernel_size=k, stride=s, padding=p, dilation=d, padding_mode=mode)
        _same_or_both_fail(data, (1, 1, length))
    for length, k, s, p, d, op in itertools.product(
        range(1, 5), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2), (0, 1, 2)
    ):
        data = L(
            "ConvTranspose1d",
            out_channels=1,
            kernel_size=k,
            stride=s,
            padding=p,
            dilation=d,
            output_padding=op,
        )
        _same_or_both_fail(data, (1, 1, length))


def _same_or_both_fail(data: dict[str, Any], shape: Shape) -> None:
    try:
        rule: Shape | None = layer(data).infer(shape).shape
    except (ShapeError, ValidationError):
        rule = None
    kwargs = {k: v for k, v in data.items() if k != "type"}
    if "Conv" in data["type"]:
        kwargs["in_channels"] = shape[1]
    try:
        got: Shape | None = tuple(run(getattr(torch.nn, data["type"])(**kwargs), shape).shape)
    except Exception:
        got = None
    assert rule == got, f"{data} on {list(shape)}: rule {rule}, torch {got}"


def test_conv_shape_errors() -> None:
    conv = L("Conv2d", out_channels=2, kernel_size=5)
    err = both_reject(conv, (1, 1, 4, 8), field="kernel_size")
    assert "spans 5" in err.message and "use a smaller kernel or more padding" in err.message
    both_reject({**conv, "in_channels": 3}, (1, 1, 8, 8), field="in_channels")
    both_reject({**conv, "kernel_size": 1, "groups": 2}, (1, 3, 8, 8), field="groups")
    # reflect padding must stay below the size, circular may reach it
    both_reject(
        L("Conv1d", out_channels=1, kernel_size=1, padding=3, padding_mode="reflect"),
        (1, 1, 3),
        field="padding",
    )
    agree(
        L("Conv1d", out_channels=1, kernel_size=1, padding=2, padding_mode="reflect"),
        (1, 1, 3),
    )
    agree(
        L("Conv1d", out_channels=1, kernel_size=1, padding=3, padding_mode="circular"),
        (1, 1, 3),
    )
    both_reject(
        L("Conv1d", out_channels=1, kernel_size=1, padding=4, padding_mode="circular"),
        (1, 1, 3),
        field="padding",
    )
    # padding may not eat the whole output
    tconv = L("ConvTranspose1d", out_channels=1, kernel_size=3, stride=2)
    both_reject({**tconv, "padding": 5}, (1, 1, 2), field="padding")
    agree({**tconv, "padding": 2}, (1, 1, 2))


def test_conv_spec_errors() -> None:
    data = L("Conv2d", in_channels=4, out_channels=6, kernel_size=3, groups=4)
    err = invalid(data, "groups")
    assert "groups=4 must divide out_channels=6" in str(err)
    torch_refuses(data, (1, 4, 5, 5))
    data = L("Conv2d", in_channels=3, out_channels=4, kernel_size=4, groups=4)
    assert "in_channels=3" in str(invalid(data, "groups"))
    torch_refuses(data, (1, 3, 5, 5))
    data = L("Conv1d", in_channels=1, out_channels=1, kernel_size=3, stride=2, padding="same")
    assert "only supported with stride 1" in str(invalid(data, "padding_same"))
    torch_refuses(data, (1, 1, 8))
    data = L("Conv2d", in_channels=1, out_channels=1, kernel_size=3, stride=[1, 2], padding="same")
    invalid(data, "padding_same")
    torch_refuses(data, (1, 1, 8, 8))
    data = L("ConvTranspose2d", in_channels=1, out_channels=1, kernel_size=3, padding_mode="reflect")
    invalid(data, "literal_error")
    torch_refuses(data, (1, 1, 8, 8))
    # output_padding must be below the stride or the dilation, in every dimension
    tconv = L("ConvTranspose2d", in_channels=1, out_channels=1, kernel_size=3)
    data = {**tconv, "stride": 2, "output_padding": [1, 2]}
    assert "output_padding [1, 2] must be smaller than stride 2" in str(invalid(data, "output_padding"))
    torch_refuses(data, (1, 1, 4, 4))
    data = {**tconv, "output_padding": 1}
    invalid(data, "output_padding")
    torch_refuses(data, (1, 1, 4, 4))
    agree({**tconv, "stride": 2, "output_padding": [1, 2], "dilation": [1, 3]}, (1, 1, 4, 4))
    invalid(L("Conv2d", out_channels=1, kernel_size=[3, 3, 3]), "size")
    invalid(L("Conv2d", out_channels=1, kernel_size=0), "size")
    invalid(L("Conv2d", out_channels=1, kernel_size=3, padding="full"), "padding")


# -- pooling -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "shape", "out"),
    [
        (L("MaxPool2d", kernel_size=2), (1, 3, 7, 7), (1, 3, 3, 3)),
        (L("MaxPool2d", kernel_size=2, ceil_mode=True), (1, 3, 7, 7), (1, 3, 4, 4)),
        # ceil_mode: a last window starting in the right padding is dropped
        (
            L("MaxPool1d", kernel_size=3, stride=3, padding=1, ceil_mode=True),
            (1, 1, 5),
            (1, 1, 2),
        ),
        (
            L("AvgPool1d", kernel_size=3, stride=3, padding=1, ceil_mode=True),
            (1, 1, 5),
            (1, 1, 2),
        ),
        (
            L("MaxPool3d", kernel_size=[1, 2, 2], stride=[1, 2, 2]),
            (1, 2, 4, 8, 8),
            (1, 2, 4, 4, 4),
        ),
        (L("MaxPool3d", kernel_size=2, padding=[0, 1, 1]), (1, 2, 2, 3, 3), (1, 2, 1, 2, 2)),
        (L("MaxPool2d", kernel_size=3, dilation=2, stride=1), (1, 1, 6, 6), (1, 1, 2, 2)),
        (
            L("AvgPool2d", kernel_size=3, stride=2, padding=1, divisor_override=2),
            (1, 1, 6, 5),
            (1, 1, 3, 3),
        ),
        (
            L("AvgPool3d", kernel_size=2, count_include_pad=False),
            (1, 1, 2, 4, 5),
            (1, 1, 1, 2, 2),
        ),
        (L("AdaptiveAvgPool2d", output_size=[None, 3]), (1, 2, 5, 7), (1, 2, 5, 3)),
        (L("AdaptiveMaxPool3d", output_size=[2, None, 9]), (1, 1, 4, 3, 5), (1, 1, 2, 3, 9)),
        (L("AdaptiveAvgPool1d", output_size=7), (2, 3, 5), (2, 3, 7)),
        (L("AdaptiveMaxPool1d", output_size=[1]), (2, 3, 5), (2, 3, 1)),
    ],
)
def test_pool_cases(data: dict[str, Any], shape: Shape, out: Shape) -> None:
    inferred = agree(data, shape)
    assert inferred.shape == out
    assert inferred.params == inferred.macs == 0


def test_pool_1d_grid_matches_torch() -> None:
    """Every small MaxPool1d/AvgPool1d combination (ceil_mode too): same length or both refuse."""
    grid = itertools.product(range(1, 8), (1, 2, 3, 4), (1, 2, 3), (0, 1, 2), (1, 2), (False, True))
    for length, k, s, p, d, ceil in grid:
        pool = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}
        _same_or_both_fail({"type": "MaxPool1d", **pool, "dilation": d}, (1, 1, length))
        if d == 1:
            _same_or_both_fail({"type": "AvgPool1d", **pool}, (1, 1, length))


def test_pool_shape_errors() -> None:
    err = both_reject(L("MaxPool2d", kernel_size=3), (1, 1, 2, 5), field="kernel_size")
    assert "the output would be empty" in err.message
    # avg_pool3d alone wants the unpadded input to hold a whole window; 2-d accepts the same case
    err = both_reject(L("AvgPool3d", kernel_size=2, padding=1), (1, 1, 1, 4, 4), field="kernel_size")
    assert "before padding" in err.message
    agree(L("AvgPool2d", kernel_size=2, padding=1), (1, 1, 1, 4))
    agree(L("MaxPool3d", kernel_size=2, padding=1), (1, 1, 1, 4, 4))
    # Deliberate: torch would take (N, C, L) as one unbatched (C, H, W) image; the rule refuses
    with pytest.raises(ShapeError, match=r"expects \(C, H, W\) samples \(rank 3\)"):
        layer(L("MaxPool2d", kernel_size=2)).infer((1, 2, 8))


def test_pool_spec_errors() -> None:
    for data in (
        L("MaxPool2d", kernel_size=3, padding=2),
        L("MaxPool1d", kernel_size=4, padding=3),
        L("AvgPool2d", kernel_size=[4, 2], padding=[2, 2]),
        L("AvgPool3d", kernel_size=2, padding=[0, 0, 2]),
        L("MaxPool3d", kernel_size=[2, 3, 3], padding=2),
    ):
        assert "torch requires padding <= kernel_size // 2" in str(invalid(data, "pool_padding"))
        rank = int(data["type"][-2])
        torch_refuses(data, (1, 1, *[9] * rank))
    layer(L("MaxPool2d", kernel_size=[4, 2], padding=[2, 1]))  # exactly half is fine
    invalid(L("AdaptiveAvgPool1d", output_size=[None]), "size")
    torch_refuses(L("AdaptiveAvgPool1d", output_size=[None]), (1, 1, 4))


# -- normalisation -------------------------------------------------------------------------------
def test_batch_norm() -> None:
    inferred = agree({"type": "BatchNorm2d"}, (2, 5, 3, 3))
    assert (inferred.params, inferred.buffers, inferred.args) == (10, 11, {"num_features": 5})
    assert agree(L("BatchNorm1d", affine=False), (1, 4)).params == 0
    assert agree(L("BatchNorm1d", track_running_stats=False), (2, 4, 3)).buffers == 0
    agree(L("BatchNorm3d", momentum=None, eps=1e-3), (1, 2, 1, 2, 2))
    both_reject(L("BatchNorm2d", num_features=4), (1, 5, 3, 3), field="num_features")
    both_reject({"type": "BatchNorm1d"}, (1, 4, 3, 2), field=None)  # 3-d samples are BatchNorm2d's
    # without running statistics the batch's own are used, which needs 2 values per channel
    no_stats = L("BatchNorm1d", track_running_stats=False)
    err = both_reject(no_stats, (1, 4), field="track_running_stats")
    assert "with a batch of 1" in err.message
    agree(no_stats, (2, 4))
    agree(no_stats, (1, 4, 2))
    agree({"type": "BatchNorm1d"}, (1, 4))  # eval mode with running statistics is fine at batch 1
    # with neither weights nor statistics torch never looks at num_features
    agree(
        L("BatchNorm2d", num_features=7, affine=False, track_running_stats=False),
        (2, 3, 2, 2),
    )


def test_layer_norm() -> None:
    assert agree(L("LayerNorm", normalized_shape=[4, 5]), (2, 3, 4, 5)).params == 40
    assert agree(L("LayerNorm", normalized_shape=5, bias=False), (2, 5)).params == 5
    assert agree(L("LayerNorm", normalized_shape=5, elementwise_affine=False), (2, 5)).params == 0
    agree(L("LayerNorm", normalized_shape=[2, 5]), (2, 5))  # torch lets it cover the batch too
    err = both_reject(L("LayerNorm", normalized_shape=[4, 4]), (2, 3, 4, 5), field="normalized_shape")
    assert "set normalized_shape: [4, 5]" in err.message
    both_reject(L("LayerNorm", normalized_shape=[1, 2, 5]), (2, 5), field="normalized_shape")
    invalid(L("LayerNorm", normalized_shape=[]), "normalized_shape")
    invalid(L("LayerNorm", normalized_shape=0), "normalized_shape")


def test_group_norm() -> None:
    inferred = agree(L("GroupNorm", num_groups=2), (1, 6, 4))
    assert (inferred.params, inferred.args) == (12, {"num_channels": 6})
    agree(L("GroupNorm", num_groups=3, num_channels=3), (2, 3))
    both_reject(L("GroupNorm", num_groups=4), (1, 6, 4), field="num_groups")
    both_reject(L("GroupNorm", num_groups=2, num_channels=4), (1, 6, 4), field="num_channels")
    err = both_reject(L("GroupNorm", num_groups=3), (1, 3), field="num_groups")
    assert "1 value per group" in err.message
    data = L("GroupNorm", num_groups=4, num_channels=6)
    assert "num_groups=4 must divide num_channels=6" in str(invalid(data, "num_groups"))
    torch_refuses(data, (1, 6, 4))
    # without weights torch never looks at num_channels
    agree(L("GroupNorm", num_groups=2, num_channels=8, affine=False), (1, 6, 4))


# -- linear --------------------------------------------------------------------------------------
def test_linear() -> None:
    inferred = agree(L("Linear", out_features=3), (2, 5, 7))
    assert inferred.shape == (2, 5, 3)
    assert inferred.params == 7 * 3 + 3
    assert inferred.macs == 2 * 5 * 7 * 3
    assert inferred.args == {"in_features": 7}
    assert agree(L("Linear", in_features=4, out_features=2, bias=False), (3, 4)).params == 8
    err = both_reject(L("Linear", in_features=6, out_features=2), (1, 4), field="in_features")
    assert "set in_features: 4 or leave it out" in err.message


# -- activations and dropout ---------------------------------------------------------------------
ELEMENTWISE = [
    L("ReLU", inplace=True),
    L("LeakyReLU", negative_slope=0.2),
    L("ELU", alpha=0.5),
    L("GELU", approximate="tanh"),
    {"type": "SiLU"},
    {"type": "Sigmoid"},
    {"type": "Tanh"},
    {"type": "Identity"},
    L("Softmax", dim=-1),
    L("LogSoftmax", dim=1),
    {"type": "Softmax"},
    L("Dropout", p=0.3),
]


@pytest.mark.parametrize("data", ELEMENTWISE, ids=lambda d: d["type"])
def test_elementwise_keeps_shape(data: dict[str, Any]) -> None:
    for shape in ((2, 3), (1, 2, 3, 4)):
        inferred = agree(data, shape)
        assert inferred.shape == shape and inferred.params == 0


@pytest.mark.parametrize(
    ("kind", "shape"), [("Dropout1d", (2, 3, 4)), ("Dropout2d", (2, 3, 4, 4)), ("Dropout3d", (1, 2, 2, 2, 2))]
)
def test_channel_dropout(kind: str, shape: Shape) -> None:
    agree({"type": kind, "p": 1.0}, shape)
    # Deliberate: torch reads a sample one rank short as unbatched (with a warning); a spec's
    # input is one sample plus the batch, so the rule refuses the ambiguous rank.
    with pytest.raises(ShapeError, match=r"samples \(rank \d\), but the incoming shape is"):
        layer({"type": kind}).infer(shape[:-1])


def test_dropout_probability() -> None:
    for p in (0.0, 1.0):
        agree(L("Dropout", p=p), (2, 3))
    for p in (-0.1, 1.5):
        invalid(L("Dropout", p=p), "less_than_equal" if p > 1 else "greater_than_equal")
        with pytest.raises(ValueError, match="dropout probability"):
            torch.nn.Dropout(p=p)


def test_softmax_dim() -> None:
    err = both_reject(L("Softmax", dim=2), (2, 3), field="dim")
    assert "use a dim in [-2, 1]" in err.message
    both_reject(L("LogSoftmax", dim=-3), (2, 3), field="dim")
    agree(L("Softmax", dim=-2), (2, 3))


# -- reshaping -----------------------------------------------------------------------------------
def test_flatten() -> None:
    assert agree({"type": "Flatten"}, (2, 3, 4, 5)).shape == (2, 60)
    assert agree(L("Flatten", start_dim=0), (2, 3, 4)).shape == (24,)
    assert agree(L("Flatten", start_dim=2, end_dim=-2), (2, 3, 4, 5, 6)).shape == (2, 3, 20, 6)
    both_reject(L("Flatten", start_dim=3, end_dim=1), (2, 3, 4, 5), field="start_dim")
    both_reject(L("Flatten", start_dim=4), (2, 3, 4, 5), field="start_dim")
    both_reject(L("Flatten", end_dim=-5), (2, 3, 4, 5), field="end_dim")


def test_unflatten() -> None:
    assert agree(L("Unflatten", dim=1, unflattened_size=[2, -1]), (3, 12)).shape == (3, 2, 6)
    assert agree(L("Unflatten", dim=-1, unflattened_size=[2, 3]), (1, 4, 6)).shape == (
        1,
        4,
        2,
        3,
    )
    assert agree(L("Unflatten", dim=0, unflattened_size=[1, -1]), (2, 3)).shape == (1, 2, 3)
    both_reject(L("Unflatten", dim=1, unflattened_size=[5, -1]), (3, 12), field="unflattened_size")
    both_reject(L("Unflatten", dim=1, unflattened_size=[2, 5]), (3, 12), field="unflattened_size")
    both_reject(L("Unflatten", dim=2, unflattened_size=[1]), (3, 12), field="dim")
    for sizes in ([-1, -1], [2, 0]):
        data = L("Unflatten", dim=1, unflattened_size=sizes)
        invalid(data, "unflattened_size")
        torch_refuses(data, (3, 12))


@pytest.mark.parametrize(
    ("data", "shape", "out"),
    [
        (L("Upsample", scale_factor=2), (1, 2, 5, 5), (1, 2, 10, 10)),
        (L("Upsample", scale_factor=1.5, mode="bilinear"), (1, 2, 5, 4), (1, 2, 7, 6)),
        # float rounding: 100 * 0.29 is 28.999999999999996, floored to 28 like torch
        (L("Upsample", scale_factor=0.29), (1, 1, 100), (1, 1, 28)),
        (
            L("Upsample", scale_factor=2.2, mode="linear", align_corners=True),
            (1, 1, 3),
            (1, 1, 6),
        ),
        (
            L("Upsample", scale_factor=[1.5, 2, 0.5], mode="trilinear"),
            (1, 1, 2, 3, 4),
            (1, 1, 3, 6, 2),
        ),
        (
            L("Upsample", scale_factor=0.5, mode="area", recompute_scale_factor=True),
            (1, 1, 5, 5),
            (1, 1, 2, 2),
        ),
        (L("Upsample", size=[3, 9], mode="bicubic"), (1, 1, 5, 5), (1, 1, 3, 9)),
        (L("Upsample", size=4, mode="nearest-exact"), (1, 1, 2, 3, 5), (1, 1, 4, 4, 4)),
    ],
)
def test_upsample_cases(data: dict[str, Any], shape: Shape, out: Shape) -> None:
    assert agree(data, shape).shape == out


def test_upsample_errors() -> None:
    both_reject(L("Upsample", scale_factor=2, mode="bilinear"), (1, 1, 5), field="mode")
    both_reject(L("Upsample", size=[2, 2]), (1, 1, 5), field="size")
    both_reject(L("Upsample", scale_factor=0.1), (1, 1, 5), field="scale_factor")
    for data, kind in (
        ({"type": "Upsample"}, "upsample_size"),
        (L("Upsample", size=3, scale_factor=2), "upsample_size"),
        (L("Upsample", scale_factor=2, align_corners=True), "align_corners"),
        (L("Upsample", size=3, recompute_scale_factor=True), "recompute_scale_factor"),
    ):
        invalid(data, kind)
        torch_refuses(data, (1, 1, 4, 4))
    layer(L("Upsample", size=3, recompute_scale_factor=False))


# -- Sequential, through the compiler -------------------------------------------------------------
SPEC: dict[str, Any] = {
    "name": "tiny",
    "input": [3, 8, 8],
    "layers": [
        {
            "type": "Sequential",
            "name": "features",
            "layers": [
                {"type": "Conv2d", "name": "conv1", "out_channels": 4, "kernel_size": 3, "padding": 1},
                {"type": "BatchNorm2d"},
                "ReLU",
                {"type": "MaxPool2d", "kernel_size": 2, "ceil_mode": True},
            ],
        },
        "Flatten",
        {"type": "Linear", "name": "head", "out_features": 5},
        {"type": "Softmax", "dim": -1},
    ],
}


def test_sequential_build_matches_inference() -> None:
    report = infer_shapes(SPEC, batch=2)
    model = build(SPEC, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(report.input))
    assert tuple(out.shape) == report.output == (2, 5)
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(b.numel() for b in model.buffers()) == report.buffers
    assert [r.path for r in report.rows] == [
        "features.conv1",
        "features.1",
        "features.2",
        "features.3",
        "1",
        "head",
        "3",
    ]
    assert {name for name, _ in model.named_modules()} >= {r.path for r in report.rows}
    assert "features.conv1.weight" in model.state_dict()
    assert verify_on_meta(report) == (2, 5)


def test_sequential_error_names_the_incoming_shape() -> None:
    features = {
        **SPEC["layers"][0],
        "layers": [*SPEC["layers"][0]["layers"][:3], L("MaxPool2d", kernel_size=3)],
    }
    spec = {**SPEC, "input": [3, 2, 2], "layers": [features, *SPEC["layers"][1:]]}
    with pytest.raises(SpecError) as info:
        infer_shapes(spec)
    assert (
        "MaxPool2d (layers[0].layers[3]): the output would be empty: dimension H of "
        "[N, 4, 2, 2] (after ReLU at layers[0].layers[2]) is 2" in str(info.value)
    )
    with pytest.raises(RuntimeError):  # and torch agrees
        torch.nn.MaxPool2d(3)(torch.randn(1, 4, 2, 2))


# -- the registry against torch ------------------------------------------------------------------
def test_torchspec_layers_does_not_import_torch() -> None:
    code = "import sys, torchspec.layers, torchspec.infer; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_registered_type_is_torch_class(type_name: str) -> None:
    # torch.nn.<type>, or torchspec's own module for the merge and tensor layers torch.nn lacks
    torch_cls = REGISTRY[type_name].torch_factory()
    if REGISTRY[type_name].learned_tensor:  # a factory of the nn.Parameter, named as the layer
        assert inspect.isfunction(torch_cls)
    else:
        assert isinstance(torch_cls, type) and issubclass(torch_cls, torch.nn.Module)
    assert torch_cls.__name__ == type_name
    # RNN, LSTM, GRU take (*args, **kwargs) and declare their keywords in a typing overload
    overloads = typing.get_overloads(torch_cls.__init__) if isinstance(torch_cls, type) else []
    signatures = [inspect.signature(f) for f in overloads]
    params = next(
        (sig.parameters for sig in signatures if "args" not in sig.parameters),
        inspect.signature(torch_cls).parameters,
    )
    for field, info in REGISTRY[type_name].model_fields.items():
        if field in ("name", "type", "from_") or (type_name == "Sequential" and field == "layers"):
            continue
        if field in REGISTRY[type_name].spec_fields:  # torchspec's own (causal): never torch's
            assert field not in params, f"{type_name}.{field} is torch's keyword, not torchspec's"
            continue
        assert field in params, f"{type_name}.{field} is not a keyword of torch.nn.{type_name}"
        theirs = params[field].default
        ours = info.default
        if theirs is inspect.Parameter.empty:
            # torch requires it: we require it too, or infer it from the shape
            assert ours is PydanticUndefined or (ours is None and field in INFERABLE), field
        elif callable(theirs) and isinstance(ours, str):  # activation: "relu" names F.relu
            assert getattr(torch.nn.functional, ours) is theirs, f"{type_name}.{field} default"
        elif ours is None and field in INFERABLE:
            # inferred from the incoming shape where torch has a fixed default (Transformer's
            # d_model=512): the same value wherever torch's default fits the input
            pass
        elif ours is not PydanticUndefined:
            assert ours == theirs and type(ours) is type(theirs), f"{type_name}.{field} default"
        else:
            pytest.fail(f"{type_name}.{field} is required but torch defaults it to {theirs!r}")


# -- layer names ---------------------------------------------------------------------------------
def _dunder(name: str) -> bool:
    """Names torchspec refuses by pattern: every name starting with "__" (Python's and torch's own,
    some added at run time, e.g. ___needs_generation_tag_patch once torch.compile has run)."""
    return name.startswith("__")


def test_reserved_names_cover_what_add_module_refuses() -> None:
    pattern = re.compile(REGISTRY["ReLU"].model_json_schema()["properties"]["name"]["anyOf"][0]["pattern"])
    refused = set()
    for attr in dir(torch.nn.Sequential()):
        try:
            torch.nn.Sequential().add_module(attr, torch.nn.Identity())
        except KeyError:
            refused.add(attr)
    assert "forward" in refused and "training" in refused
    missing = {a for a in refused if pattern.match(a) and a not in RESERVED and not _dunder(a)}
    assert not missing, f"add RESERVED names: {sorted(missing)}"
    for attr in sorted(refused):
        if pattern.match(attr):
            with pytest.raises(ValidationError, match="pick another name"):
                REGISTRY["ReLU"].model_validate(L("ReLU", name=attr))


def test_ordinary_names_pass() -> None:
    for name in ("conv1", "features", "head", "_aux", "Training", "to_rgb"):
        REGISTRY["ReLU"].model_validate(L("ReLU", name=name))
        torch.nn.Sequential().add_module(name, torch.nn.Identity())


def test_reserved_name_in_a_spec_is_located() -> None:
    spec = {"name": "x", "input": [3], "layers": [L("ReLU", name="eval")]}
    with pytest.raises(SpecError, match="name 'eval' is taken"):
        infer_shapes(spec)
