"""argparse value types shared by the commands (a bad value is a usage error: exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

__all__ = [
    "DEVICE_FORMS",
    "add_allow_code_argument",
    "add_device_argument",
    "add_set_argument",
    "add_variant_argument",
    "device_problem",
    "int_at_least",
    "positive_int",
]

INT64_MAX = 2**63 - 1
DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:[0-9]{1,4})?)")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text)} characters)"


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a decimal int >= ``minimum`` (and within int64, like every spec int)."""

    def parse(text: str) -> int:
        digits = text.strip().lstrip("+-").lstrip("0")
        if len(digits) > 19 and digits.isdigit():  # never int() a huge string; it cannot fit
            raise argparse.ArgumentTypeError(f"expected an integer <= 2**63 - 1, found {_shown(text)}")
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, found {_shown(text)}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, found {value}")
        if value > INT64_MAX:
            raise argparse.ArgumentTypeError(f"expected an integer <= 2**63 - 1, found {value}")
        return value

    return parse


positive_int = int_at_least(1)


def device_problem(text: str) -> str | None:
    """Why ``text`` is no ``--device`` value, or None: ``auto`` (cuda > mps > cpu), ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``. The CLI reports it as ``argument --device: ...`` (exit 1, like
    any other device error), never as a ``--set train.device=...`` the user did not type. Whether
    the device exists is checked later."""
    allowed = ", ".join(DEVICE_FORMS[:-1]) + f" or {DEVICE_FORMS[-1]}"
    name = text.strip()
    if not name:
        return f"expected {allowed}, found an empty value"
    if not _DEVICE.fullmatch(name):
        hint = "; meta holds no data (shapes are verified on meta already)" if name == "meta" else ""
        return f"expected {allowed}, found {_shown(text)}{hint}"
    return None


def add_device_argument(parser: argparse.ArgumentParser, *, default: str | None, what: str = "") -> None:
    """``--device D``, checked by :func:`device_problem` (``default=None``: the spec's train.device)."""
    shown = f"default: {default}" if default else "default: train.device"
    forms = ", ".join(DEVICE_FORMS)
    parser.add_argument("--device", default=default, metavar="D", help=f"{what}{forms} ({shown})")


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


def add_allow_code_argument(parser: argparse.ArgumentParser) -> None:
    """``--allow-code``: consent to import the module a ``python`` data source names. Only the
    command line gives it: no spec key or ``--set`` can."""
    parser.add_argument(
        "--allow-code",
        action="store_true",
        help="allow importing the user code a `source: python` data source names (it is named on "
        "stderr first); without it such a spec is refused",
    )


def add_variant_argument(parser: argparse.ArgumentParser) -> None:
    """``--variant NAME``: pick one of the spec's ``variants`` (its vars changed as it says)."""
    parser.add_argument(
        "--variant", metavar="NAME", help="use one of the spec's variants (a name under its `variants:`)"
    )
