"""The zoo's proof against torchvision: one helper every ``test_zoo_*.py`` file calls.

A zoo spec reproduces a torchvision model exactly when torchvision's own state_dict (constructor
with ``weights=None``) loads with ``strict=True``, outputs agree within 1e-5 in eval() (and in
train() where the model has no dropout or stochastic depth), and ``check``'s parameter count is
torchvision's.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import torchspec
from torchspec import infer_shapes, load_spec

SPECS = Path(__file__).parents[1] / "specs"

__all__ = ["SPECS", "assert_reproduces", "reference"]


def reference(factory: str, **kwargs: Any) -> torch.nn.Module:
    """``torchvision.models.video:r3d_18`` → that model, built with ``weights=None`` and a fixed seed."""
    module, _, name = factory.rpartition(":")
    torch.manual_seed(0)
    model: torch.nn.Module = getattr(importlib.import_module(module), name)(weights=None, **kwargs)
    return model


def assert_reproduces(
    spec: str | Path,
    factory: str,
    sample: Sequence[int],
    *,
    variant: str | None = None,
    overrides: Sequence[str] = (),
    train_too: bool,
    atol: float = 1e-5,
    perturb: float = 0.0,
    **kwargs: Any,
) -> None:
    """Assert the spec (with variant/overrides) is the torchvision model ``factory(**kwargs)``.

    ``sample`` is one input without the batch, e.g. (3, 64, 64); a batch of 2 is compared.
    ``perturb`` > 0 adds N(0, perturb) noise to every parameter of torchvision's model first: an
    initialisation that hides part of the network (ViT's zero head and class token, ConvNeXt's
    1e-6 layer scale) would otherwise let a wrong spec agree.
    """
    path = SPECS / spec if isinstance(spec, str) else spec
    ref = reference(factory, **kwargs)
    if perturb:
        noise = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for param in ref.parameters():
                param.add_(torch.randn(param.shape, generator=noise) * perturb)
    model = torchspec.build(path, variant=variant, overrides=list(overrides))
    model.load_state_dict(ref.state_dict(), strict=True)  # the same keys and shapes
    torch.manual_seed(1)
    x = torch.randn(2, *sample)
    # eval() first: it changes nothing, so both modes run on the same two models (no copies)
    modes = ("eval", "train") if train_too else ("eval",)
    for mode in modes:
        getattr(model, mode)()
        getattr(ref, mode)()
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref(x), atol=atol, rtol=atol)
        # train() updates BatchNorm's running statistics: they must move the same way (the
        # parameters cannot move under no_grad, and comparing 60M of them costs seconds)
        ours, theirs = dict(model.named_buffers()), dict(ref.named_buffers())
        torch.testing.assert_close(ours, theirs, atol=atol, rtol=atol)
    report = infer_shapes(load_spec(path, variant=variant, overrides=list(overrides)))
    assert report.params == sum(p.numel() for p in ref.parameters())
