"""Fine-tuning: start from saved weights (``train.init``), freeze parameters (``train.freeze``), and
per-pattern optimizer settings (``train.param_groups``).

``init`` reads a .safetensors file (torchspec's own, digest-verified, or any other: header checked
against the file before loading), a torchspec .ckpt (CRCs and structure verified), or a plain
state_dict .pt/.pth (``torch.load(weights_only=True)``, so no code runs; ``{"state_dict": ...}`` and
``{"model": ...}`` wrappers are unwrapped). Every tensor must be finite. Loading is strict: each
model tensor must be in the file with its shape and each file tensor must be used, except model
tensors matching ``init.new`` (a new head: missing or of another shape, kept freshly initialised);
``strict: false`` loads whatever fits and reports the rest.

Frozen parameters get ``requires_grad=False`` and stay out of the optimizer, so no gradient,
momentum or weight decay touches them; a BatchNorm whose parameters are all frozen also keeps its
running statistics (it runs in eval mode), so a frozen backbone stays bitwise as loaded.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from torchspec.errors import SpecError
from torchspec.source import Document
from torchspec.training.config import TrainConfig
from torchspec.training.paths import resolve_path

__all__ = ["InitReport", "apply_init", "freeze", "matches", "optimizer_groups", "read_state"]

SHOWN = 8  # names listed per kind in a report or an error


def matches(name: str, patterns: Iterable[str]) -> bool:
    """``name`` matches a glob (``fc.*``) or a module prefix (``layer4`` for ``layer4.*``)."""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def _list(names: Sequence[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


# -- reading the weights ------------------------------------------------------------------------
def _unwrap(loaded: Any, path: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):  # Lightning-style and torchspec-style wrappers
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not loaded:
        raise SpecError.single(
            path,
            f"{path} holds a {type(loaded).__name__}, not a state_dict (a mapping of names to tensors)",
            hints=["save one with torch.save(model.state_dict(), path)"],
        )
    bad = [str(k) for k, v in loaded.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise SpecError.single(path, f"{path}: entries that are not named tensors: {_list(bad)}")
    return loaded


def _plain_safetensors(data: bytes, path: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file that is not torchspec's, its header already checked."""
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as exc:
        raise SpecError.single(path, f"cannot read {path}: not a valid safetensors file ({exc})") from None


def read_state(path: str) -> dict[str, torch.Tensor]:
    """The tensors in ``path`` (.safetensors, .ckpt, .pt, .pth), verified as the module docstring says."""
    from torchspec.builder import SPEC_METADATA_KEY, nonfinite_tensors, read_safetensors

    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        from torchspec.reading import open_regular
        from torchspec.safetensors_file import parse

        handle, _ = open_regular(path, "safetensors file")
        with handle:
            data = handle.read()
        # every declared range checked against the file before anything is loaded
        ours = SPEC_METADATA_KEY in parse(data, path).metadata
        state = read_safetensors(path)[1] if ours else _plain_safetensors(data, path)
    elif ext == ".ckpt":
        from torchspec.training.checkpoint import read_weights

        state = read_weights(path)[1]
    elif ext in (".pt", ".pth"):
        from torchspec.training.arrays import ArrayFileError, load_pt

        try:
            state = _unwrap(load_pt(path, "weights"), path)
        except ArrayFileError as exc:
            raise SpecError.single(path, str(exc)) from None
    else:
        raise SpecError.single(path, f"train.init: {path} is not a .safetensors, .ckpt, .pt or .pth file")
    bad = nonfinite_tensors(state)
    if bad:
        raise SpecError.single(path, f"{path} holds non-finite weights (NaN or inf in {_list(bad)})")
    return state


# -- loading them into the model ------------------------------------------------------------------
@dataclass
class InitReport:
    path: str
    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # in the model, not in the file
    mismatched: list[str] = field(default_factory=list)  # "name [file shape] -> [model shape]"
    unused: list[str] = field(default_factory=list)  # in the file, not in the model

    def lines(self) -> list[str]:
        out = [f"init: {len(self.loaded)} tensors loaded from {self.path}"]
        for what, names in (
            ("new (not in the file, trained from scratch)", self.new),
            ("shape-mismatched (trained from scratch)", self.mismatched),
            ("unused (in the file, not in the model)", self.unused),
        ):
            if names:
                out.append(f"  {what}: {_list(names)}")
        return out


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(map(str, t.shape)) + "]"


def apply_init(model: torch.nn.Module, config: TrainConfig, base_dir: str, doc: Document) -> InitReport:
    """Load ``train.init`` into ``model`` as the module docstring says; a located SpecError if strict
    loading finds model tensors missing or reshaped (not in ``init.new``) or file tensors unused."""
    assert config.init is not None
    cfg = config.init
    path = resolve_path(cfg.path, base_dir)
    state = read_state(path)
    own = model.state_dict()
    report = InitReport(path)
    refused: list[str] = []
    for name, tensor in own.items():
        found = state.get(name)
        if found is not None and found.shape == tensor.shape:
            report.loaded.append(name)
            continue
        text = name if found is None else f"{name} {_shape(found)} -> {_shape(tensor)}"
        (report.new if found is None else report.mismatched).append(text)
        if not matches(name, cfg.new):
            refused.append(text)
    report.unused = [name for name in state if name not in own]
    if cfg.strict and (refused or report.unused):
        parts = []
        if refused:
            parts.append(f"model tensors missing from it or of another shape: {_list(refused)}")
        if report.unused:
            parts.append(f"tensors in it the model does not have: {_list(report.unused)}")
        message = f"train.init: {path} does not fit the model ({'; '.join(parts)})"
        hints = [
            "a new head: list its tensors to train them from scratch, e.g. "
            f"`init: {{path: {cfg.path}, new: [{refused[0].split()[0].rsplit('.', 1)[0]}.*]}}`"
            if refused
            else "check that the file was saved from this architecture",
            "or `strict: false` loads every tensor that fits and reports the rest",
        ]
        raise SpecError([doc.problem(("train", "init"), message, hints)])
    with torch.no_grad():
        for name in report.loaded:
            own[name].copy_(state[name])  # state_dict tensors share storage with the model
    return report


# -- freezing and parameter groups ----------------------------------------------------------------
def _unmatched(patterns: Sequence[str], names: Sequence[str]) -> int | None:
    for i, pattern in enumerate(patterns):
        if not any(matches(n, [pattern]) for n in names):
            return i
    return None


def _top_names(names: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(n.split(".")[0] for n in names))


def freeze(model: torch.nn.Module, patterns: Sequence[str], doc: Document) -> list[str]:
    """Freeze the parameters matching ``patterns`` (each must match one); their names."""
    names = [n for n, _ in model.named_parameters()]
    bad = _unmatched(patterns, names)
    if bad is not None:
        raise SpecError(
            [
                doc.problem(
                    ("train", "freeze", bad),
                    f"train.freeze: {patterns[bad]!r} matches no parameter of the model",
                    [f"parameter names start with: {_top_names(names)} (a glob like `layer1.*` or a prefix)"],
                )
            ]
        )
    frozen = [n for n in names if matches(n, patterns)]
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    for module in model.modules():  # a frozen BatchNorm keeps its running statistics too
        own = list(module.parameters(recurse=False))
        if (
            isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
            and own
            and not any(p.requires_grad for p in own)
        ):
            module.register_forward_pre_hook(_stay_in_eval)
    return frozen


def _stay_in_eval(module: torch.nn.Module, args: Any) -> None:
    module.train(False)


def optimizer_groups(model: torch.nn.Module, config: TrainConfig, doc: Document) -> Iterable[Any]:
    """The optimizer's parameters: the trainable ones, split by ``train.param_groups`` (the first
    group matching a name wins; the rest form the default group, first, with the optimizer's own
    settings)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not config.param_groups:
        return [p for _, p in trainable]
    names = [n for n, _ in trainable]
    groups: list[dict[str, Any]] = [{"params": []} for _ in config.param_groups]
    default: list[torch.nn.Parameter] = []
    for i, wanted in enumerate(config.param_groups):
        bad = _unmatched(wanted.params, names)
        if bad is not None:
            raise SpecError(
                [
                    doc.problem(
                        ("train", "param_groups", i, "params", bad),
                        f"train.param_groups[{i}]: {wanted.params[bad]!r} matches no trainable parameter",
                        [f"trainable parameter names start with: {_top_names(names)}"],
                    )
                ]
            )
    for name, param in trainable:
        first = next((i for i, g in enumerate(config.param_groups) if matches(name, g.params)), None)
        (default if first is None else groups[first]["params"]).append(param)
    for made, settings in zip(groups, config.param_groups):
        for key in ("lr", "weight_decay"):
            if getattr(settings, key) is not None:
                made[key] = getattr(settings, key)
    return ([{"params": default}] if default else []) + [g for g in groups if g["params"]]
