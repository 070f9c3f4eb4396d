"""The JSON Schema of the spec format (``torchspec schema``) against the real validator.

Every spec in ``specs/`` must validate; mistakes the validator rejects must fail the schema too
(and for every layer type, the bare name is allowed by the schema exactly when the validator
allows it). The checked-in ``torchspec.schema.json`` must equal the generated schema: after a
change to the layers, regenerate it with ``torchspec schema -o torchspec.schema.json``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from torchspec import SpecError, load_spec
from torchspec.expand import expand_document
from torchspec.layers import REGISTRY
from torchspec.schema import SCHEMA_DIALECT, bare_layer_names, schema_text, spec_schema
from torchspec.source import load_document

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "torchspec.schema.json"
SPECS = sorted(p for pattern in ("*.yaml", "*.yml", "*.json") for p in (ROOT / "specs").glob(pattern))
LOCAL = sorted((ROOT / "tests" / "data").glob("*.*"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = spec_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_ok(validator: Draft202012Validator, data: Any) -> bool:
    return not list(validator.iter_errors(data))


def pydantic_ok(data: Any) -> bool:
    try:
        load_spec(data)
    except SpecError:
        return False
    return True


def test_schema_header() -> None:
    schema = spec_schema()
    assert list(schema)[:3] == ["$schema", "$id", "title"]
    assert schema["$schema"] == SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] == "torchspec model spec"
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"name", "input", "layers"}


def test_additional_properties_are_forbidden_everywhere() -> None:
    schema = spec_schema()
    assert schema["additionalProperties"] is False
    for name in REGISTRY:
        definition = schema["$defs"][name]
        assert definition["additionalProperties"] is False, name
        assert definition["required"][0] == "type", name
        assert next(iter(definition["properties"])) == "type", name
        assert definition["properties"]["type"]["const"] == name


def test_layer_items_are_a_bare_name_or_a_discriminated_mapping() -> None:
    schema = spec_schema()
    ref = {"$ref": "#/$defs/Layer"}
    assert schema["properties"]["layers"]["items"] == ref
    assert schema["$defs"]["Sequential"]["properties"]["layers"]["items"] == ref
    bare, mapping = schema["$defs"]["Layer"]["oneOf"]
    assert bare == {"$ref": "#/$defs/LayerName"}
    assert schema["$defs"]["LayerName"]["enum"] == bare_layer_names()
    assert {"ReLU", "Flatten", "Dropout", "BatchNorm2d"} <= set(bare_layer_names())
    assert not {"Conv3d", "Linear", "Sequential", "Upsample"} & set(bare_layer_names())
    assert mapping["discriminator"]["propertyName"] == "type"
    assert mapping["discriminator"]["mapping"] == {name: f"#/$defs/{name}" for name in REGISTRY}
    assert mapping["oneOf"] == [{"$ref": f"#/$defs/{name}"} for name in REGISTRY]
    assert mapping["properties"]["type"]["enum"] == list(REGISTRY)


@pytest.mark.parametrize("spec", SPECS + LOCAL, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_spec_validates(validator: Draft202012Validator, spec: Path) -> None:
    # the schema describes the plain format: a spec with blocks, vars or repeats is checked as
    # expanded (for a plain spec, expansion returns the very same document)
    data = expand_document(load_document(spec), builtin=REGISTRY).data
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


def test_the_zoo_is_found() -> None:
    assert ROOT / "specs" / "c3d.yaml" in SPECS


GOOD: dict[str, Any] = {
    "name": "good",
    "input": [3, 8, 8],
    "layers": [
        {"name": "conv", "type": "Conv2d", "out_channels": 4, "kernel_size": [3, 3], "padding": "same"},
        "ReLU",
        {"type": "Sequential", "layers": ["BatchNorm2d", {"type": "MaxPool2d", "kernel_size": 2}]},
        "Flatten",
        {"type": "Linear", "out_features": 2},
    ],
}


def _with(path: tuple[Any, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    node = data
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


BAD = {
    "unknown layer type": _with(("layers", 1), {"type": "Relu"}),
    "unknown bare name": _with(("layers", 1), "Relu"),
    "bare name of a layer with required parameters": _with(("layers", 1), "Conv2d"),
    "missing out_channels": _with(("layers", 0, "out_channels"), None, delete=True),
    "string where an int belongs": _with(("layers", 0, "out_channels"), "4"),
    "boolean where an int belongs": _with(("layers", 0, "out_channels"), True),
    "float where an int belongs": _with(("layers", 0, "out_channels"), 4.5),
    "zero out_channels": _with(("layers", 0, "out_channels"), 0),
    "kernel_size list of the wrong length": _with(("layers", 0, "kernel_size"), [3, 3, 3]),
    "unknown padding string": _with(("layers", 0, "padding"), "full"),
    "misspelt layer parameter": _with(("layers", 4, "out_feature"), 2),
    "layer without a type": _with(("layers", 4, "type"), None, delete=True),
    "type that is not a string": _with(("layers", 4, "type"), 3),
    "layer that is a list": _with(("layers", 1), ["ReLU"]),
    "invalid layer name": _with(("layers", 0, "name"), "conv.1"),
    "unknown top-level key": _with(("optimizer",), "adam"),
    "missing name": _with(("name",), None, delete=True),
    "empty name": _with(("name",), ""),
    "missing input": _with(("input",), None, delete=True),
    "empty input": _with(("input",), []),
    "negative input dimension": _with(("input",), [3, -8, 8]),
    "empty layers": _with(("layers",), []),
    "layers not a list": _with(("layers",), {"type": "ReLU"}),
    "empty nested Sequential": _with(("layers", 2, "layers"), []),
    "bad layer inside a nested Sequential": _with(("layers", 2, "layers", 1, "kernel_size"), "2"),
    "probability above 1": _with(("layers", 1), {"type": "Dropout", "p": 1.5}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_specs_fail_the_schema_and_the_validator(validator: Draft202012Validator, case: str) -> None:
    data = BAD[case]
    assert not pydantic_ok(data), "the case must be a real mistake"
    assert not schema_ok(validator, data)


def test_the_good_spec_passes_both(validator: Draft202012Validator) -> None:
    assert pydantic_ok(GOOD)
    assert schema_ok(validator, GOOD)


# What JSON Schema cannot say, so the schema accepts it and only the validator refuses it.
# (Also: JSON Schema counts 4.0 as an integer, where the strict validator wants an int.)
SCHEMA_GAPS = {"Upsample": "exactly one of size and scale_factor (a model validator)"}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_bare_names_agree_with_the_validator(validator: Draft202012Validator, name: str) -> None:
    data = {"name": "bare", "input": [3, 8, 8], "layers": [name]}
    assert schema_ok(validator, data) == pydantic_ok(data)
    mapping = {"name": "bare", "input": [3, 8, 8], "layers": [{"type": name}]}
    assert pydantic_ok(mapping) == pydantic_ok(data)
    if name in SCHEMA_GAPS:
        assert schema_ok(validator, mapping) and not pydantic_ok(mapping)
    else:
        assert schema_ok(validator, mapping) == pydantic_ok(mapping)


def test_checked_in_schema_is_current() -> None:
    assert CHECKED_IN.exists(), "run: torchspec schema -o torchspec.schema.json"
    text = CHECKED_IN.read_text(encoding="utf-8")
    assert text == schema_text(), (
        "torchspec.schema.json is stale: run torchspec schema -o torchspec.schema.json"
    )
    assert json.loads(text) == spec_schema()


def _cli(*args: str | Path) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=300,
    )


def test_schema_command_prints_and_writes_it(tmp_path: Path) -> None:
    printed = _cli("schema")
    assert (printed.returncode, printed.stderr) == (0, "")
    assert printed.stdout == schema_text()
    out = tmp_path / "schema.json"
    written = _cli("schema", "-o", out)
    assert written.returncode == 0 and written.stdout == ""
    assert out.read_text(encoding="utf-8") == schema_text()
    failed = _cli("schema", "-o", tmp_path / "missing" / "schema.json")
    assert failed.returncode == 1 and "cannot write" in failed.stderr and "Traceback" not in failed.stderr
