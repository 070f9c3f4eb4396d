"""specs/resnet.yaml and specs/video_resnet.yaml are torchvision's ResNets (tests/zoo.py says what
"is" means).

Every variant is checked for structure on the meta device (torchvision's state_dict keys and shapes,
the parameter count `check` prints, the output shape), which costs no memory or initialisation;
one variant of each kind of block (basic, bottleneck, grouped, wide; 3D, mixed, (2+1)D) is run
against torchvision's weights on small inputs: torch's strides fit 32x32 images and 8x32x32 clips.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from zoo import SPECS, assert_reproduces

import torchspec
from torchspec import infer_shapes, load_spec
from torchspec.source import load_document

IMAGES = ("resnet.yaml", "torchvision.models", [3, 32, 32])
CLIPS = ("video_resnet.yaml", "torchvision.models.video", [3, 8, 32, 32])


def _variants(spec: str) -> list[str]:
    return list(load_document(SPECS / spec).data["variants"])


EVERY = [(*IMAGES, v) for v in _variants(IMAGES[0])] + [(*CLIPS, v) for v in _variants(CLIPS[0])]
RUN = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "r3d_18", "mc3_18", "r2plus1d_18"]


def test_the_specs_hold_the_variants_the_issue_names() -> None:
    names = {v for *_, v in EVERY}
    assert set(RUN) | {"resnet34", "resnet101"} <= names


@pytest.mark.parametrize(("spec", "module", "sample", "variant"), EVERY, ids=[v for *_, v in EVERY])
def test_every_variant_has_torchvisions_structure(
    spec: str, module: str, sample: list[int], variant: str
) -> None:
    with torch.device("meta"):
        ref = getattr(importlib.import_module(module), variant)(weights=None)
    overrides = [f"input={sample}"]
    ours = torchspec.build(SPECS / spec, variant=variant, overrides=overrides, device="meta")
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    report = infer_shapes(load_spec(SPECS / spec, variant=variant, overrides=overrides))
    assert report.params == sum(p.numel() for p in ref.parameters())
    x = torch.empty(2, *sample, device="meta")
    with torch.no_grad():
        assert ours.eval()(x).shape == ref.eval()(x).shape == (2, 1000 if "video" not in module else 400)


@pytest.mark.parametrize(("spec", "module", "sample", "variant"), [e for e in EVERY if e[3] in RUN], ids=RUN)
def test_variant_is_torchvisions_model(spec: str, module: str, sample: list[int], variant: str) -> None:
    assert_reproduces(
        spec, f"{module}:{variant}", sample, variant=variant, overrides=[f"input={sample}"], train_too=True
    )


@pytest.mark.parametrize(("spec", "default"), [("resnet.yaml", "resnet50"), ("video_resnet.yaml", "r3d_18")])
def test_the_spec_is_short_and_its_vars_are_the_default_variant(spec: str, default: str) -> None:
    assert len((SPECS / spec).read_text().splitlines()) < 150
    plain, chosen = (infer_shapes(load_spec(SPECS / spec, variant=v)) for v in (None, default))
    assert [(r.path, r.args) for r in plain.rows] == [(r.path, r.args) for r in chosen.rows]
