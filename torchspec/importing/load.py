"""``MODULE_PATH:FACTORY`` -> the model: the one place ``torchspec import`` runs code it is given.

MODULE_PATH is looked for in the working directory first, then where Python looks. Naming the
module on the command line is the consent to import it (as ``--allow-code`` is for data
sources); what is imported is said first. A module that cannot be imported, a factory that is not
there or not callable, or one that does not return an ``nn.Module`` is an :class:`ImportFailure`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from torchspec.importing.errors import ImportFailure
from torchspec.training.usercode import make_importable

__all__ = ["load_factory", "parse_target"]

_TARGET = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<factory>[A-Za-z_][\w.]*)$")


def parse_target(text: str) -> tuple[str, str]:
    """``torchvision.models:resnet18`` -> ("torchvision.models", "resnet18")."""
    found = _TARGET.match(text)
    if not found:
        raise ImportFailure(
            f"{text!r} is not MODULE_PATH:FACTORY",
            hints=[
                "e.g. torchvision.models:resnet18 (a module Python can import, a colon, a callable in it)"
            ],
        )
    return found["module"], found["factory"]


def load_factory(
    target: str, kwargs: Mapping[str, Any] | None = None, say: Callable[[str], None] | None = None
) -> nn.Module:
    """Import the module named in ``target``, call its factory with ``kwargs``, return the model."""
    module_name, factory_name = parse_target(target)
    if say is not None:
        say(f"importing {module_name} (as named on the command line) to call {factory_name}")
    make_importable()  # ./mynet.py is mynet, from the torchspec script as from python -m
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the module's own code may raise anything
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ImportFailure(f"cannot import {module_name}: {reason}") from None
    factory: Any = module
    for part in factory_name.split("."):
        if not hasattr(factory, part):
            raise ImportFailure(f"{module_name} has no {factory_name}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ImportFailure(
            f"{module_name}:{factory_name} is not callable (a factory returning an nn.Module)"
        )
    try:
        model = factory(**dict(kwargs or {}))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ImportFailure(f"{module_name}:{factory_name}(...) failed: {reason}") from None
    if not isinstance(model, nn.Module):
        raise ImportFailure(
            f"{module_name}:{factory_name} returned {type(model).__name__!r}, not a torch.nn.Module"
        )
    return model
