"""torchspec import on hand-written modules: the functional glue becomes torchspec layers (checked
by loading the model's state_dict into the written spec and comparing outputs), and what a spec
cannot say (data-dependent control flow, a module of one's own computing with its own weights,
shared weights, a buffer read in forward, several inputs) is an error naming the module and the
source line, with nothing returned.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from import_check import reproduce
from torch import nn

from torchspec.importing import ImportFailure, import_model


class Glue(nn.Module):
    """+, torch.cat, F.relu, mean over dims, torch.flatten, a nested branch read twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.conv(x))
        b = self.branch(x)
        y = torch.cat([a + b, b * a], 1)
        y = y.mean([2, 3], keepdim=True)
        return self.fc(torch.flatten(y, 1))


class Views(nn.Module):
    """Sizes read from the tensor: x.view(x.size(0), -1), transpose, reshape with computed sizes,
    chunk, indexing, a learned tensor added, sigmoid and tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv1d(4, 6, 1)
        self.scale = nn.Parameter(torch.randn(6, 1))
        self.head = nn.Linear(30, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, length = x.shape
        y = self.proj(x) + self.scale  # [N, 6, L]
        y = y.transpose(1, 2).contiguous()  # [N, L, 6]
        y = y.reshape(n, length * 2, 3)  # [N, 2L, 3]
        first, second = y.chunk(2, dim=1)
        z = torch.sigmoid(first) * torch.tanh(second)  # [N, L, 3]
        return self.head(z.view(z.size(0), -1)) + z[:, 0].mean(1, keepdim=True)


class Pools(nn.Module):
    """Functional pooling and F.interpolate (a U-Net's up-sampling), skip-concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(2, 4, 3, padding=1)
        self.up = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)  # [N, 4, 8, 8]
        y = F.max_pool2d(skip, 2) + F.avg_pool2d(skip, 3, stride=2, padding=1, count_include_pad=False)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        return self.up(torch.cat([y, skip], dim=1))


@pytest.mark.parametrize("model", [Glue, Views, Pools], ids=["glue", "views", "pools"])
def test_glue_becomes_layers(model: type[nn.Module], tmp_path: Path) -> None:
    torch.manual_seed(0)
    sample = {Glue: (3, 8, 8), Views: (4, 10), Pools: (2, 8, 8)}[model]
    reproduce(model(), sample, tmp_path)


def test_glue_spec_reads_as_written(tmp_path: Path) -> None:
    data = reproduce(Glue(), (3, 8, 8), tmp_path, outputs=False)
    types = [layer["type"] for layer in data["layers"]]
    assert types == ["Conv2d", "ReLU", "Sequential", "Add", "Mul", "Concat", "Mean", "Flatten", "Linear"]
    branch = data["layers"][2]
    assert branch == {
        "name": "branch",
        "type": "Sequential",
        "from": "input",
        "layers": [{"type": "Conv2d", "out_channels": 8, "kernel_size": 1}, {"type": "BatchNorm2d"}],
    }


def _line_of(cls: type, text: str) -> str:
    lines, start = inspect.getsourcelines(cls)
    return f"{inspect.getsourcefile(cls)}:{start + next(i for i, line in enumerate(lines) if text in line)}"


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        if x.sum() > 0:
            x = -x
        return x


class MyLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class Buffered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.register_buffer("mean", torch.zeros(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x - self.mean)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fc(x + y)


class OwnDropout(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            x = x * (torch.rand_like(x) > 0.5)
        return x


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        y.add_(x)
        return torch.relu(y)


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * 2


def _failure(model: nn.Module, sample: tuple[int, ...] = (8,)) -> str:
    with pytest.raises(ImportFailure) as caught:
        import_model(model, sample)
    return str(caught.value)


def test_data_dependent_control_flow_is_an_error_at_its_line() -> None:
    message = _failure(Branchy())
    assert "control flow" in message
    assert f"<model> (Branchy), {_line_of(Branchy, 'if x.sum()')}" in message


def test_custom_leaf_is_an_error_naming_it_and_its_line() -> None:
    message = _failure(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), MyLinear()))
    assert message.startswith("2 (MyLinear, defined at ")
    assert _line_of(MyLinear, "return F.linear") in message
    assert "not a torchspec layer" in message


def test_shared_weights_buffers_and_two_inputs_are_errors() -> None:
    fc = nn.Linear(8, 8)
    assert "0 is called twice and so shares its weights" in _failure(nn.Sequential(fc, nn.ReLU(), fc))
    assert "reads mean, a tensor that is not an nn.Parameter" in _failure(Buffered())
    assert "takes 2 inputs (x, y)" in _failure(TwoInputs())


def test_wrong_input_shape_is_an_error() -> None:
    message = _failure(nn.Sequential(nn.Linear(8, 4)), (7,))
    assert message.startswith("0 (Linear): running call_module 0 on an input of the given shape failed: ")
    assert "hint: check --input" in message


def test_unused_weights_are_an_error_naming_the_module() -> None:
    import torchvision

    message = _failure(torchvision.models.googlenet(aux_logits=True, init_weights=False), (3, 64, 64))
    assert message.startswith("aux1 (InceptionAux, ")
    assert "aux_logits=False" in message


def test_training_only_code_of_ones_own_is_an_error() -> None:
    """Traced in eval mode, a hand-written dropout would vanish from the spec: refused."""
    message = _failure(nn.Sequential(nn.Linear(8, 8), OwnDropout()))
    assert message.startswith(f"1 (OwnDropout), {_line_of(OwnDropout, 'torch.rand_like')}")
    assert "computes something else in train mode than in eval mode" in message


def test_in_place_results_constants_and_a_bare_layer_are_errors() -> None:
    message = _failure(InPlace())
    assert message.startswith(f"<model> (InPlace), {_line_of(InPlace, 'y.add_(x)')}: y.add_(x): the result")
    assert "has no layer for arithmetic with constants" in _failure(Scaled())
    message = _failure(nn.Linear(8, 2))
    assert message.startswith("the model is a single Linear layer: its weights have keys without a container")
