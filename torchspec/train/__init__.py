"""Training a spec: the ``train`` section (:mod:`.config`), data sources, the loop, checkpoints.

``torchspec.train(spec_or_path, overrides=[...])`` runs training and returns the metrics history.
The submodules other than :mod:`.config`, :mod:`.validate` and :mod:`.overrides` import torch.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["train"]


def train(*args: Any, **kwargs: Any) -> Any:
    """Train a spec; see :func:`torchspec.train.loop.train`."""
    from torchspec.train.loop import train as run

    return run(*args, **kwargs)


class _CallableModule(types.ModuleType):
    # `torchspec.train` is both this package and the public function: importing the package makes
    # it an attribute of `torchspec`, so the package itself must be callable.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
