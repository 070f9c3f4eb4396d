"""The torch.nn classes that are not spec layers: why, and what to use instead (no torch import).

Every other ``nn.Module`` class torch.nn exports is a registered layer: tests/test_catalogue.py
enumerates the installed torch.nn and fails on a class that is neither, so a new torch release
is noticed. An unknown layer type that is listed here gets the reason and the replacement in
its error instead of a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["EXCLUDED", "PATTERNS", "excluded", "explain_unknown"]

# name -> (why it is no spec layer, what to use instead)
EXCLUDED: dict[str, tuple[str, str]] = {
    "Module": ("the base class of every module", "a layer type, or a block of your own (`blocks:`)"),
    "Container": ("a deprecated base class", "Sequential"),
    "ModuleList": ("a list of modules without a forward", "Sequential, or `repeat:`"),
    "ModuleDict": ("a mapping of modules without a forward", "named layers in a Sequential"),
    "ParameterList": ("bare parameters without a forward", "a layer that owns its weights"),
    "ParameterDict": ("bare parameters without a forward", "a layer that owns its weights"),
    "DataParallel": ("a training wrapper around a model", "train.parallel: dp (or ddp)"),
    "RNNBase": ("the base class of RNN, LSTM and GRU", "RNN, LSTM or GRU"),
    "RNNCellBase": ("the base class of the recurrent cells", "RNNCell, LSTMCell or GRUCell"),
    "AdaptiveLogSoftmaxWithLoss": (
        "a head and a loss in one: its forward needs the targets",
        "a Linear head and train.loss",
    ),
}

# Families matched by name: (test, why, what to use instead; {base} is the name without "Lazy")
PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "Lazy*",
        "torchspec infers in_features, in_channels and num_features from the incoming shape already",
        "{base}",
    ),
    ("*Loss, NLLLoss2d", "a loss, not a layer", "train.loss: {{type: {name}}} (torchspec train)"),
)


def excluded(name: str, registered: object = ()) -> tuple[str, str] | None:
    """(why, use instead) for a torch.nn class name that is no spec layer, else None.

    ``registered`` holds the layer type names: ``LazyFoo`` is excluded when ``Foo`` is one.
    """
    if name in EXCLUDED:
        return EXCLUDED[name]
    if name.startswith("Lazy") and name[4:] in registered:  # type: ignore[operator]
        why, instead = PATTERNS[0][1:]
        return why, instead.format(base=name[4:])
    if name.endswith("Loss") or name == "NLLLoss2d":
        why, instead = PATTERNS[1][1:]
        return why, instead.format(name=name)
    return None


def explain_unknown(tag: str, registered: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """For an unknown layer type that torch.nn has: (the message's reason, hints), else None.

    ``LazyLinear`` -> ("torchspec infers ... already", ["did you mean 'Linear'?"]).
    """
    found = excluded(tag, registered)
    if found is None:
        return None
    why, instead = found
    if tag.startswith("Lazy"):
        fields = getattr(registered.get(instead), "model_fields", {})
        named = [f for f in ("in_features", "in_channels", "num_features") if f in fields]
        if named:
            why = f"torchspec infers {named[0]} from the incoming shape already"
        return why, [f"did you mean '{instead}'? (leave {named[0] if named else 'it'} out)"]
    return f"torch.nn.{tag} is {why}", [f"use {instead}"]
