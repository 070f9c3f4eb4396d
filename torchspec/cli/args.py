"""argparse value types shared by the commands (a bad value is a usage error: exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["add_set_argument", "add_variant_argument", "int_at_least", "positive_int"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a decimal int >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, found {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, found {value}")
        return value

    return parse


positive_int = int_at_least(1)


def add_set_argument(parser: argparse.ArgumentParser, example: str = "train.epochs=1") -> None:
    """``--set KEY=VALUE`` (repeatable): override any spec value by dotted path."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a spec value by dotted path, e.g. --set {example} (repeatable)",
    )


def add_variant_argument(parser: argparse.ArgumentParser) -> None:
    """``--variant NAME``: pick one of the spec's ``variants`` (its vars changed as it says)."""
    parser.add_argument(
        "--variant", metavar="NAME", help="use one of the spec's variants (a name under its `variants:`)"
    )
