"""Random graphs against real torch: hypothesis draws DAGs of convolutions, norms, pools,
activations, merges (Add, Mul: broadcasting) and concatenations over random shapes, wired with
``from:``, and checks the checker against an independent torch interpreter on real tensors:

* when the checker accepts the graph, every node's inferred shape, parameter count and MACs equal
  what torch computes, and the model torchspec builds gives exactly the interpreter's output;
* when it rejects the graph, torch fails too, at the very node the error names.

The interpreter never uses torchspec's arithmetic: constructor arguments a spec may leave out
(in_channels, num_features) come from the real tensors, as a hand-written forward would.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import torchspec
import torchspec.nn as tsnn
from torchspec.errors import SpecError

EXAMPLES = 120


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[int], list[dict[str, Any]]]:
    """(input shape with the batch, layers): each node reads one or more earlier nodes or input."""
    shape = [
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 7)),
        draw(st.integers(1, 7)),
    ]
    layers: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 7))):
        names = ["input", *(layer["name"] for layer in layers)]
        kind = draw(
            st.sampled_from(["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Add", "Mul", "Concat", "Mean"])
        )
        layer: dict[str, Any] = {"name": f"n{i}", "type": kind}
        if kind in ("Add", "Mul", "Concat"):
            layer["from"] = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3))
        elif draw(st.booleans()):
            layer["from"] = draw(st.sampled_from(names))
        if kind == "Conv2d":
            layer["out_channels"] = draw(st.integers(1, 5))
            layer["kernel_size"] = draw(st.integers(1, 3))
            layer["stride"] = draw(st.integers(1, 2))
            layer["padding"] = draw(st.integers(0, 1))
        elif kind == "MaxPool2d":
            layer["kernel_size"] = draw(st.integers(1, 3))
        elif kind == "Concat":
            layer["dim"] = draw(st.sampled_from([0, 1, 1, 2, 3, -1, 4]))
        elif kind == "Mean":
            layer["dim"] = draw(st.sampled_from([[2, 3], [-1], [1]]))
            layer["keepdim"] = True
        layers.append(layer)
    return shape, layers


def _module(layer: dict[str, Any], x: torch.Tensor) -> torch.nn.Module:
    """The torch module a hand-written network would use, sized from the real input."""
    kind = layer["type"]
    args = {k: v for k, v in layer.items() if k not in ("name", "type", "from")}
    if kind == "Conv2d":
        return torch.nn.Conv2d(x.shape[1], **args)
    if kind == "BatchNorm2d":
        return torch.nn.BatchNorm2d(x.shape[1])
    if kind in ("ReLU", "MaxPool2d"):
        return getattr(torch.nn, kind)(**args)
    return getattr(tsnn, kind)(**args)


def interpret(shape: list[int], layers: list[dict[str, Any]], model: torch.nn.Module | None) -> tuple[
    list[torch.Tensor], list[torch.nn.Module], int | None
]:  # fmt: skip
    """Run the graph eagerly: (outputs, modules, index of the node torch fails at or None)."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    outs: list[torch.Tensor] = []
    modules: list[torch.nn.Module] = []
    by_name: dict[str, int] = {}
    for i, layer in enumerate(layers):
        refs = layer.get("from", [layers[i - 1]["name"]] if i else ["input"])
        refs = [refs] if isinstance(refs, str) else refs
        ins = [x if r == "input" else outs[by_name[r]] for r in refs]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = _module(layer, ins[0]).eval()
                if model is not None:  # the weights torchspec's build drew
                    module.load_state_dict(getattr(model, layer["name"]).state_dict())
                with torch.no_grad():
                    out = module(*ins)
            if out.numel() == 0:
                raise RuntimeError("empty output")
        except Exception:
            return outs, modules, i
        outs.append(out)
        modules.append(module)
        by_name[layer["name"]] = i
    return outs, modules, None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(graphs())
def test_random_graphs_match_torch(graph: tuple[list[int], list[dict[str, Any]]]) -> None:
    shape, layers = graph
    note(f"input {shape}, layers {layers}")
    spec = {"name": "g", "input": shape[1:], "layers": layers}
    try:
        report = torchspec.infer_shapes(spec, batch=shape[0])
    except SpecError as err:
        _, _, failed = interpret(shape, layers, None)
        assert failed is not None, f"torchspec rejects the graph but torch runs it: {err}"
        blamed = int(re.search(r"layers\[(\d+)\]", str(err))[1])  # type: ignore[index]
        assert blamed == failed, f"torch fails at layers[{failed}], torchspec blames: {err}"
        return
    model = torchspec.build(report.spec, seed=1).eval()
    outs, modules, failed = interpret(shape, layers, model)
    assert failed is None, f"torchspec accepts the graph but torch fails at layers[{failed}]"
    for row, out, module in zip(report.rows, outs, modules):
        assert row.output == tuple(out.shape), row.path
        assert row.params == sum(p.numel() for p in module.parameters()), row.path
        if isinstance(module, torch.nn.Conv2d):
            assert row.macs == module.weight.numel() * out.shape[0] * out.shape[2] * out.shape[3], row.path
        else:
            assert row.macs == 0
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.equal(model(torch.randn(shape)), outs[-1])


def test_the_sweep_reaches_both_outcomes() -> None:
    """The generator is not vacuous: it yields accepted graphs and rejected ones with merges."""
    seen = {"ok": 0, "error": 0, "merge_ok": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
    @given(graphs())
    def count(graph: tuple[list[int], list[dict[str, Any]]]) -> None:
        shape, layers = graph
        try:
            torchspec.infer_shapes({"name": "g", "input": shape[1:], "layers": layers}, batch=shape[0])
        except SpecError:
            seen["error"] += 1
            return
        seen["ok"] += 1
        seen["merge_ok"] += any(layer["type"] in ("Add", "Mul", "Concat") for layer in layers)

    count()
    assert seen["ok"] >= 20 and seen["error"] >= 10 and seen["merge_ok"] >= 10, seen


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
