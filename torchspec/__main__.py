"""``python -m torchspec``: the same CLI as the ``torchspec`` console script."""

from torchspec.cli import entry

entry()
