"""How much memory this machine has free, and refusing work that would not fit in it.

Used before anything large is allocated: building a model from a spec or a file (its analytic
parameter bytes, :attr:`torchspec.infer.ShapeReport.param_bytes`) and reading an artefact into
memory. Linux's ``MemAvailable`` (``/proc/meminfo``) is what the kernel can hand out without
swapping; elsewhere ``os.sysconf`` gives the free physical pages. This module does not import torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torchspec.errors import SpecError

__all__ = ["available_memory", "check_fits", "format_size"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def format_size(n: int) -> str:
    """``1.80 GB``, ``512.00 MB``, ``12.00 kB``, ``7 B`` (decimal units)."""
    for scale, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if n >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n} B"


def check_fits(nbytes: int, what: str, file: str, hints: Sequence[str] = ()) -> None:
    """Raise a SpecError naming ``file`` if ``nbytes`` exceed the memory available now.

    ``what`` says what would take the memory ("building the model", "reading it"); the message
    reads ``FILE: error: WHAT would take 1.80 GB of memory, but only 1.20 GB is available``.
    Where the system does not report its free memory nothing is refused.
    """
    free = available_memory()
    if free is None or nbytes <= free:
        return
    raise SpecError.single(
        file,
        f"{what} would take {format_size(nbytes)} of memory, but only {format_size(free)} is available",
        hints=[*hints, "free some memory, or use a machine with more"],
    )
