"""The Spec model round-trips: what it dumps validates back to the same spec, nesting included."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import torchspec

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p for p in (ROOT / "specs").iterdir() if p.suffix in (".yaml", ".json"))


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.name)
def test_dump_and_to_data_round_trip(path: Path) -> None:
    spec = torchspec.load_spec(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic's serializer warns when a layer dumps as its base class
        dumped = spec.model_dump(exclude_unset=True)
    # (Spec equality would also compare where each was read from, so compare the models' data)
    assert torchspec.load_spec(dumped).model_dump() == spec.model_dump()
    assert torchspec.load_spec(spec.to_data()).model_dump() == spec.model_dump()
    assert torchspec.infer_shapes(dumped).to_json() == torchspec.infer_shapes(spec).to_json()
