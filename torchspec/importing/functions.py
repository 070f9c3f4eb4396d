"""Which torch functions and tensor methods are which torchspec layers (:mod:`.glue` uses them).

Each entry is ``function or method name -> (layer type, ((argument, torch's default), ...))``: the
call's arguments after the tensor, bound by position or keyword, become the layer's fields, the ones
equal to torch's default left out.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "ADD", "CAT", "MUL", "POOLS", "WINDOWS"]

Names = tuple[tuple[str, Any], ...]

# activations and dropout: F.relu(x, inplace=True), x.sigmoid(), F.dropout(x, p, self.training)
ACTIVATIONS: dict[Any, tuple[str, Names]] = {
    F.relu: ("ReLU", (("inplace", False),)),
    torch.relu: ("ReLU", ()),
    "relu": ("ReLU", ()),
    "relu_": ("ReLU", ()),
    F.relu6: ("ReLU6", (("inplace", False),)),
    F.gelu: ("GELU", (("approximate", "none"),)),
    F.silu: ("SiLU", (("inplace", False),)),
    F.hardswish: ("Hardswish", (("inplace", False),)),
    F.hardsigmoid: ("Hardsigmoid", (("inplace", False),)),
    F.leaky_relu: ("LeakyReLU", (("negative_slope", 0.01), ("inplace", False))),
    torch.sigmoid: ("Sigmoid", ()),
    "sigmoid": ("Sigmoid", ()),
    torch.tanh: ("Tanh", ()),
    "tanh": ("Tanh", ()),
    F.softmax: ("Softmax", (("dim", None),)),
    "softmax": ("Softmax", (("dim", None),)),
    F.log_softmax: ("LogSoftmax", (("dim", None),)),
    F.dropout: ("Dropout", (("p", 0.5), ("training", True), ("inplace", False))),
}
POOLS: dict[Any, str] = {
    F.adaptive_avg_pool1d: "AdaptiveAvgPool1d",
    F.adaptive_avg_pool2d: "AdaptiveAvgPool2d",
    F.adaptive_avg_pool3d: "AdaptiveAvgPool3d",
}
MAX: Names = (("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False))
AVG: Names = (("kernel_size", None), ("stride", None), ("padding", 0), ("ceil_mode", False))
AVG += (("count_include_pad", True), ("divisor_override", None))
INTERPOLATE: Names = (("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None))
INTERPOLATE += (("recompute_scale_factor", None), ("antialias", False))
WINDOWS: dict[Any, tuple[str, Names]] = {
    F.max_pool1d: ("MaxPool1d", (*MAX, ("return_indices", False))),
    F.max_pool2d: ("MaxPool2d", (*MAX, ("return_indices", False))),
    F.max_pool3d: ("MaxPool3d", (*MAX, ("return_indices", False))),
    F.avg_pool1d: ("AvgPool1d", AVG[:-1]),
    F.avg_pool2d: ("AvgPool2d", AVG),
    F.avg_pool3d: ("AvgPool3d", AVG),
    F.interpolate: ("Upsample", INTERPOLATE),
}
ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__iadd__"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__imul__"}
CAT = {torch.cat, torch.concat}
