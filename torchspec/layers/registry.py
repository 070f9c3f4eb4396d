"""The layer registry: type name -> class, each family module imported at the first lookup of one
of its types (:data:`REGISTRY`; :mod:`torchspec.layers` indexes the names)."""

import importlib
from collections.abc import Iterator, Mapping
from typing import TypeVar

from torchspec.layers.layer import Layer

__all__ = ["REGISTRY", "Registry", "register"]

L = TypeVar("L", bound=type[Layer])


class Registry(Mapping[str, "type[Layer]"]):
    """Layer type name -> class, importing a family module only when one of its types is asked for.

    Creating ~150 pydantic classes costs more than the rest of `torchspec check`, so the names are
    known up front (``index``: name -> module, from a scan of the family modules' ``type:``
    declarations) and a module is imported at the first lookup of one of its types. Names, ``in``
    and iteration never import; ``values()`` and ``items()`` import every family.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[Layer]] = {}
        self._where: dict[str, str] = {}  # name -> module that registers it

    def index(self, where: Mapping[str, str]) -> None:
        for name, module in where.items():
            self._where.setdefault(name, module)

    def add(self, cls: type[Layer]) -> None:
        name = cls.type_name()
        if name in self._classes:
            raise RuntimeError(f"layer type {name!r} registered twice")
        self._classes[name] = cls
        self._where.setdefault(name, cls.__module__)

    def __getitem__(self, name: str) -> type[Layer]:
        cls = self._classes.get(name)
        if cls is None:
            importlib.import_module(self._where[name])  # KeyError: no such layer type
            cls = self._classes.get(name)
            if cls is None:
                raise RuntimeError(
                    f"{self._where[name]} declares layer type {name!r} but does not register it"
                )
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


REGISTRY = Registry()


def register(cls: L) -> L:
    """Add a layer class to the registry under its ``type`` name (the torch.nn class name)."""
    REGISTRY.add(cls)
    return cls
