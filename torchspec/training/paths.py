"""Where a spec's relative paths point: one rule for data paths and ``output_dir``.

The rule (README "Training"): a relative path written in a spec — in the file or by ``--set`` — is
relative to the **spec file's folder** (the working directory for a spec given as a mapping): data
files and folders (``tensors`` inputs/targets, ``torchvision`` root, folder sources' root and
list_file), ``train.init`` and ``train.output_dir``. Without ``output_dir`` a run goes to
``runs/<name>`` in the working directory (a default, not a path the spec wrote).

The spec a run saves (``spec.yaml``) holds these paths absolute, so it is usable as it is from any
working directory: ``torchspec eval runs/x/spec.yaml --checkpoint runs/x/model.safetensors``.
Torch-free.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PATH_KEYS", "absolute_paths", "resolve_path", "run_folder", "spec_folder"]

# the keys of each data source that name files or folders
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "tensors": ("inputs", "targets"),
    "torchvision": ("root",),
    "video-folder": ("root", "list_file"),
    "frame-folder": ("root",),
    "image-folder": ("root",),
}
DATA_KEYS = ("data", "val", "test")  # the train keys that hold a data source


def spec_folder(file: str) -> str:
    """The folder relative paths in the spec at ``file`` start from (the cwd without a file)."""
    if file and os.path.isfile(file):
        return os.path.dirname(os.path.abspath(file))
    return os.getcwd()


def resolve_path(name: str, base_dir: str | None) -> str:
    """``name`` (``~`` expanded) joined to ``base_dir`` when relative; as is when absolute."""
    path = os.path.expanduser(name)
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return path


def run_folder(output_dir: str | None, name: str, base_dir: str) -> str:
    """The run's folder: ``output_dir`` by the rule, or ``runs/<name>`` in the working directory."""
    if output_dir is None:
        return os.path.join("runs", name)
    return os.path.normpath(resolve_path(output_dir, base_dir))


def absolute_paths(train: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """A copy of a dumped ``train`` section with every path key absolute (data sources, ``init``,
    ``output_dir``), so the section means the same from any working directory."""
    out = dict(train)
    for key in DATA_KEYS:
        source = out.get(key)
        if isinstance(source, dict):
            fixed = dict(source)
            for field in PATH_KEYS.get(str(source.get("source")), ()):
                if isinstance(fixed.get(field), str):
                    fixed[field] = os.path.abspath(resolve_path(fixed[field], base_dir))
            out[key] = fixed
    init = out.get("init")
    if isinstance(init, dict) and isinstance(init.get("path"), str):
        out["init"] = {**init, "path": os.path.abspath(resolve_path(init["path"], base_dir))}
    if isinstance(out.get("output_dir"), str):
        out["output_dir"] = os.path.abspath(resolve_path(out["output_dir"], base_dir))
    return out
