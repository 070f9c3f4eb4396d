"""The JSON Schema (draft 2020-12) of the spec format, for editors and other tools.

It is ``Spec.model_json_schema()`` made to say what the validator accepts:

* a layer item is either a mapping (one ``$defs`` entry per layer type, chosen by its ``type``,
  with an OpenAPI-style ``discriminator`` mapping for tools that use it) or a bare type name
  (``- ReLU``) for the layer types that need no parameter;
* ``type`` is required in every layer mapping (the validator needs it to pick the layer) and
  listed first, so editors complete it first;
* ``additionalProperties: false`` stays on the spec and on every layer, as ``extra="forbid"``.

``torchspec schema -o torchspec.schema.json`` writes the checked-in copy the zoo specs point at
(``# yaml-language-server: $schema=../torchspec.schema.json``); a test keeps it current.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from torchspec.layers import LAYER_SCHEMA_MARKER, REGISTRY
from torchspec.spec import Spec

__all__ = ["SCHEMA_DIALECT", "SCHEMA_ID", "bare_layer_names", "schema_text", "spec_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Relative, so it resolves to wherever the file is read from: editors (yaml-language-server) have
# mis-resolved "#/$defs/..." when a local schema's absolute $id differed from its file's URI.
SCHEMA_ID = "torchspec.schema.json"
_LAYER = "Layer"
_LAYER_NAME = "LayerName"


def bare_layer_names() -> list[str]:
    """Layer types that may be written as a bare name: ``{type: NAME}`` alone is a valid layer."""
    names = []
    for name, cls in REGISTRY.items():
        try:
            cls.model_validate({"type": name})
        except ValidationError:
            continue
        names.append(name)
    return names


def _mark_layers(node: Any) -> Any:
    """Every layer-item marker becomes a ``$ref`` to the one ``Layer`` definition."""
    if node == LAYER_SCHEMA_MARKER:
        return {"$ref": f"#/$defs/{_LAYER}"}
    if isinstance(node, dict):
        return {k: _mark_layers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mark_layers(v) for v in node]
    return node


def _layer_def(definition: dict[str, Any]) -> dict[str, Any]:
    """``type`` required and first; its default dropped (it is the discriminator, not optional)."""
    props = dict(definition.get("properties", {}))
    type_prop = {k: v for k, v in props.pop("type").items() if k != "default"}
    out = dict(definition)
    out["properties"] = {"type": type_prop, **props}
    out["required"] = ["type", *[r for r in definition.get("required", []) if r != "type"]]
    out["additionalProperties"] = False
    return out


def spec_schema() -> dict[str, Any]:
    """The post-processed JSON Schema of :class:`~torchspec.spec.Spec` (a fresh dict)."""
    # Layer items are a marker (torchspec.layers.AnyLayer) that becomes a `Layer` reference; the
    # layer types' definitions come from the registry, and `Layer` chooses among them below.
    body = _mark_layers(copy.deepcopy(Spec.model_json_schema()))
    defs: dict[str, Any] = body.pop("$defs", {})
    _, layer_schemas = models_json_schema([(cls, "validation") for cls in REGISTRY.values()])
    layer_defs = _mark_layers(layer_schemas)["$defs"]
    defs.update({name: _layer_def(layer_defs[name]) for name in REGISTRY if name in layer_defs})
    missing = set(REGISTRY) - set(defs)
    if missing:  # pragma: no cover - a registry/schema mismatch is a torchspec bug
        raise RuntimeError(f"layer types missing from the schema: {sorted(missing)}")
    for reserved in (_LAYER, _LAYER_NAME):
        if reserved in defs:  # pragma: no cover - a layer type named like our own definitions
            raise RuntimeError(f"a $defs entry is already called {reserved!r}")
    ordered = list(REGISTRY)  # registration order, as pydantic lists the union
    mapping = {name: f"#/$defs/{name}" for name in ordered}
    defs[_LAYER_NAME] = {
        "title": "Layer name",
        "description": "a layer with every parameter left at its default, written as its type "
        "name alone: `- ReLU` is short for `- {type: ReLU}`",
        "type": "string",
        "enum": bare_layer_names(),
    }
    defs[_LAYER] = {
        "title": "Layer",
        "description": "one layer: a mapping whose `type` is a torch.nn class name and whose other "
        "keys are that class's constructor arguments, or a bare type name",
        "oneOf": [
            {"$ref": f"#/$defs/{_LAYER_NAME}"},
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ordered}},
                "oneOf": [{"$ref": ref} for ref in mapping.values()],
                "discriminator": {"propertyName": "type", "mapping": mapping},
            },
        ],
    }
    train, train_defs = _train_schema()
    clash = set(train_defs) & set(defs)
    if clash:  # pragma: no cover - prefixed names cannot meet a layer's
        raise RuntimeError(f"train definitions clash with layer definitions: {sorted(clash)}")
    defs.update(train_defs)
    body.setdefault("properties", {})["train"] = {
        "anyOf": [{"$ref": f"#/$defs/{TRAIN_PREFIX}section"}, {"type": "null"}],
        "description": "how to train the model (see `torchspec train`)",
    }
    defs[f"{TRAIN_PREFIX}section"] = train
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": body.pop("title", "torchspec model spec"),
    }
    schema.update(body)
    schema["additionalProperties"] = False
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


TRAIN_PREFIX = "train."  # the train section's $defs, kept apart from the layers'


def _prefixed(node: Any) -> Any:
    """``node`` with every ``#/$defs/X`` reference made ``#/$defs/train.X``, and every discriminated
    union (loss, optimizer, scheduler, data source, transform) also taking its bare tag name, as
    the validator does (``loss: CrossEntropyLoss`` is ``{type: CrossEntropyLoss}``)."""
    if isinstance(node, list):
        return [_prefixed(item) for item in node]
    if not isinstance(node, dict):
        return node.replace("#/$defs/", f"#/$defs/{TRAIN_PREFIX}") if isinstance(node, str) else node
    out = {key: _prefixed(value) for key, value in node.items()}
    if "discriminator" in out and "oneOf" in out:
        union = {k: v for k, v in out.items() if k not in ("title", "description", "default")}
        bare = {"type": "string", "enum": list(out["discriminator"]["mapping"])}
        out = {k: v for k, v in out.items() if k in ("title", "description", "default")}
        out["oneOf"] = [bare, union]
    return out


def _train_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``train`` section's schema (from :class:`~torchspec.training.config.TrainConfig`) and its
    definitions, named ``train.X``."""
    from torchspec.training.config import TrainConfig

    body = copy.deepcopy(TrainConfig.model_json_schema())
    defs = body.pop("$defs", {})
    train = _prefixed(body)
    init = train["properties"]["init"]  # `init: FILE` is `init: {path: FILE}`
    init["anyOf"].insert(0, {"type": "string", "minLength": 1})
    return train, {f"{TRAIN_PREFIX}{name}": _prefixed(value) for name, value in defs.items()}


def schema_text() -> str:
    """The schema as the checked-in ``torchspec.schema.json`` holds it (2-space JSON, final newline)."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"
