"""The ``python`` data source: the user's own Dataset class, imported only with the user's consent.

A spec may come from a stranger, so naming code in it is not enough to run it: the module is
imported only when the command line says ``--allow-code`` (``allow_code=True`` from Python; no spec
key or ``--set`` can say it), it is named on stderr before the import, and the target must be a
``torch.utils.data.Dataset`` subclass (map-style) before anything is called. Mistakes in the user's
code (import errors, SyntaxError, ``sys.exit`` at import, ``__getitem__`` raising, samples that are
not ``(input, target)`` pairs, ragged samples, a negative ``__len__``) become errors at the user's
file and line, showing the last frames of *their* traceback, not ours.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import json
import linecache
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from torchspec.errors import Problem
from torchspec.training.dtypes import DTypeError, input_values, target_values

__all__ = [
    "CheckedDataset",
    "UserDataError",
    "import_folders",
    "load_python",
    "make_importable",
    "refuse_without_consent",
]

_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # .../torchspec/
_LIBS = tuple(
    {os.path.abspath(p) + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib")
     if (p := sysconfig.get_paths().get(k))}
)  # fmt: skip
_SHOWN = 3  # frames of the user's traceback shown


class UserDataError(Exception):
    """A mistake in the user's dataset. ``args[0]`` is the Problem as JSON, so it survives a
    DataLoader worker, which re-raises exceptions from their formatted text."""

    @classmethod
    def of(cls, problem: Problem) -> UserDataError:
        return cls(json.dumps([problem.file, problem.line, problem.col, problem.message,
                               list(problem.hints), problem.source_line]))  # fmt: skip

    def problem(self) -> Problem:
        text = str(self.args[0]) if self.args else ""
        marker = f"{type(self).__name__}: "
        if not text.startswith("[") and marker in text:  # re-raised from a worker: the text after
            text = text.rsplit(marker, 1)[1].strip()
        try:
            file, line, col, message, hints, source = json.loads(text)
        except ValueError:
            return Problem("<dataset>", 0, 0, text)
        return Problem(file, line, col, message, tuple(hints), source)


def _theirs(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    return not path.startswith(_OURS) and not path.startswith(_LIBS)


def _where(at: Problem) -> str:
    return f"{at.file}:{at.line}" if at.line else at.file


def _at(at: Problem, message: str, hints: tuple[str, ...] = ()) -> Problem:
    """A problem at the spec's data source (``at``: where train.data is, or its --set)."""
    return Problem(at.file, at.line, at.col, message, hints, at.source_line)


def _failure(exc: BaseException, what: str, at: Problem) -> Problem:
    """``what`` raised ``exc``: a problem at the user's last frame, with their frames listed."""
    hint = f"the data source is {_where(at)}"
    if isinstance(exc, SyntaxError) and exc.filename:
        message = f"{what}: {type(exc).__name__}: {exc.msg}"
        return Problem(exc.filename, exc.lineno or 0, exc.offset or 0, message, (hint,), exc.text)
    frames = traceback.extract_tb(exc.__traceback__)
    theirs = [f for f in frames if _theirs(f.filename)]
    theirs = theirs or [f for f in frames if not os.path.abspath(f.filename).startswith(_OURS)]
    if isinstance(exc, SystemExit):
        message = f"{what} called sys.exit({exc.code!r}); a dataset must raise an exception, not exit"
    else:
        text = str(exc).strip()
        message = f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")
    if not theirs:
        return _at(at, message)
    shown = [f"    {f.filename}:{f.lineno} in {f.name}: {(f.line or '').strip()}" for f in theirs[-_SHOWN:]]
    message += "\n  your code's traceback (most recent call last):\n" + "\n".join(shown)
    last = theirs[-1]
    return _line_problem(last.filename, last.lineno or 0, message, (hint,))


def _line_problem(file: str, line: int, message: str, hints: tuple[str, ...]) -> Problem:
    """A problem at ``file:line``, its column the line's first non-blank character."""
    text = linecache.getline(file, line).rstrip("\r\n") if line else ""
    col = len(text) - len(text.lstrip()) + 1 if text.strip() else 0
    return Problem(file, line, col, message, hints, text or None)


def _guard(call: Callable[[], Any], what: str, at: Problem) -> Any:
    """``call()``; anything it raises (sys.exit included, Ctrl-C excepted) becomes a UserDataError."""
    try:
        return call()
    except (KeyboardInterrupt, UserDataError):
        raise
    except BaseException as exc:
        raise UserDataError.of(_failure(exc, what, at)) from None


def _defined_at(obj: Any, at: Problem, message: str, hints: tuple[str, ...] = ()) -> Problem:
    """A problem at the line that defines ``obj`` (a function or class), else at the spec."""
    try:
        file = inspect.getsourcefile(obj)
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return _at(at, message, hints)
    if file is None:
        return _at(at, message, hints)
    return _line_problem(file, line, message, (*hints, f"the data source is {_where(at)}"))


def refuse_without_consent(target: str, at: Problem) -> Problem:
    """The problem for a python source without --allow-code: what would be imported, how to allow."""
    module = target.partition(":")[0]
    found = ""
    if "." not in module:  # a path search only: imports nothing, runs nothing
        spec = importlib.machinery.PathFinder.find_spec(module)
        if spec is not None and spec.origin:
            found = f" ({spec.origin})"
    message = (
        f"the python data source would import module '{module}'{found} and call {target}: "
        "user code runs only with your consent"
    )
    hints = (
        "if you trust that code, add --allow-code to the command (allow_code=True from Python)",
        "a spec or --set cannot allow code by itself",
    )
    return Problem(at.file, at.line, at.col, message, hints, at.source_line)


def import_folders(base_dir: str | None) -> list[str]:
    """Where a python source's module is looked for first, however torchspec was launched (the
    ``torchspec`` script or ``python -m torchspec``): the working directory, then the spec's folder."""
    folders = [os.getcwd(), *([base_dir] if base_dir else [])]
    return list(dict.fromkeys(os.path.abspath(f) for f in folders))


def make_importable(base_dir: str | None = None) -> None:
    """The working directory (then ``base_dir``) first on ``sys.path``, for the import of a module
    the user named."""
    # `python -m` puts the working directory first on sys.path and the console script does not:
    # both get the same folders, in the same order, ahead of the rest.
    rest = [p for p in sys.path if p and os.path.abspath(p) not in import_folders(base_dir)]
    sys.path[:] = [*import_folders(base_dir), *rest]


def load_python(
    target: str, args: dict[str, Any], at: Problem, base_dir: str | None = None
) -> CheckedDataset:
    """Import ``module:Class`` (consent was given), check it is a map-style Dataset class, build it.

    ``at`` is where the source is declared (train.data's line, or its --set argument); the module
    is looked for in :func:`import_folders` first (``base_dir``: the spec's folder)."""
    module_name, _, class_name = target.partition(":")
    make_importable(base_dir)
    sys.stderr.write(f"importing {module_name} (from {_where(at)}) because --allow-code was given\n")
    sys.stderr.flush()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            hints = (
                f"put {module_name.replace('.', '/')}.py in the spec's folder, the current folder "
                "or a folder on PYTHONPATH",
            )
            raise UserDataError.of(_at(at, f"no module named '{exc.name}'", hints)) from None
        raise UserDataError.of(_failure(exc, f"importing {module_name}", at)) from None
    except (KeyboardInterrupt, UserDataError):
        raise
    except BaseException as exc:
        raise UserDataError.of(_failure(exc, f"importing {module_name}", at)) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        message = f"module {module_name} ({getattr(module, '__file__', '?')}) has no attribute '{class_name}'"
        raise UserDataError.of(_at(at, message))
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        kind = (
            "a class"
            if isinstance(cls, type)
            else f"a {'function' if callable(cls) else 'value'} ({type(cls).__name__})"
        )
        message = f"{target} is {kind}, not a torch.utils.data.Dataset subclass; it was not called"
        hints = ("the python source takes a class: class MyData(torch.utils.data.Dataset)",)
        raise UserDataError.of(_at(at, message, hints))
    map_style = cls.__getitem__ is not Dataset.__getitem__ and hasattr(cls, "__len__")
    if issubclass(cls, IterableDataset) or not map_style:
        message = f"{target} is not a map-style Dataset: it needs __len__ and __getitem__"
        raise UserDataError.of(_defined_at(cls, at, message))
    dataset = _guard(lambda: cls(**args), f"{target}(**args)", at)
    size = _guard(lambda: type(dataset).__len__(dataset), f"{class_name}.__len__", at)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        message = f"{class_name}.__len__ returned {size!r}; it must return the number of samples, an int >= 0"
        raise UserDataError.of(_defined_at(type(dataset).__len__, at, message))
    return CheckedDataset(dataset, int(size), at)


def _tensor(value: Any, role: str, where: Callable[[str], UserDataError]) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        tensor = torch.from_numpy(np.array(value))  # a copy: owned memory
    else:
        raise where(f"its {role} is a {type(value).__name__}; return a tensor, a numpy array or a number")
    try:
        return input_values(tensor) if role == "input" else target_values(tensor)  # type: ignore[no-any-return]
    except DTypeError as exc:
        raise where(f"its {role} holds {exc}") from None


class CheckedDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The user's dataset, each sample checked: an (input, target) pair of numbers, converted by the
    dtype rule, of the same shapes as sample 0 (ragged samples cannot be batched)."""

    def __init__(self, inner: Any, size: int, at: Problem) -> None:
        self.inner, self.size, self.at = inner, size, at
        self.name = type(inner).__name__
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        if size:
            x, y = self[0]
            self.shapes = (tuple(x.shape), tuple(y.shape))

    def __len__(self) -> int:
        return self.size

    def _error(self, index: int, message: str) -> UserDataError:
        getitem = type(self.inner).__getitem__
        return UserDataError.of(_defined_at(getitem, self.at, f"sample {index} of {self.name}: {message}"))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        what = f"{self.name}.__getitem__({index})"
        item = _guard(lambda: self.inner[index], what, self.at)
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            found = f"a {type(item).__name__}" + (
                f" of {len(item)} items" if isinstance(item, (tuple, list)) else ""
            )
            raise self._error(index, f"__getitem__ returned {found}; it must return (input, target)")
        x = _tensor(item[0], "input", lambda m: self._error(index, m))
        y = _tensor(item[1], "target", lambda m: self._error(index, m))
        if self.shapes is not None and (tuple(x.shape), tuple(y.shape)) != self.shapes:
            (sx, sy) = self.shapes
            raise self._error(
                index,
                f"its input has shape {list(x.shape)} and its target {list(y.shape)}, but sample 0's "
                f"are {list(sx)} and {list(sy)}: every sample must have the same shapes",
            )
        return x, y
