"""A model.safetensors: the weights with the expanded spec and a digest of both in its metadata.

:func:`save_model` writes one (never a non-finite weight, never a torn file); :func:`read_safetensors`
checks one before any tensor is loaded (a regular file that fits, a sound header, an embedded spec
whose analytic ``state_dict`` matches the tensors, the digest, finite weights).
:func:`torchspec.builder.load_model` rebuilds the model from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torchspec.artefacts import check_state, load_embedded_spec, not_torchspec
from torchspec.errors import SpecError
from torchspec.fileio import atomic_path
from torchspec.infer import infer_shapes
from torchspec.reading import open_regular
from torchspec.safetensors_file import DIGEST_KEY, digest, parse
from torchspec.source import Document
from torchspec.spec import Spec

if TYPE_CHECKING:
    import torch

__all__ = [
    "DIGEST_METADATA_KEY",
    "FORMAT_METADATA_KEY",
    "NO_VERIFY_HINT",
    "SAFETENSORS_HINTS",
    "SPEC_METADATA_KEY",
    "nonfinite_tensors",
    "provenance",
    "read_safetensors",
    "save_model",
]

SPEC_METADATA_KEY = "torchspec.spec"
FORMAT_METADATA_KEY = "torchspec.format"
DIGEST_METADATA_KEY = DIGEST_KEY  # sha256 of the spec and tensors (torchspec.safetensors_file.digest)


def provenance(doc: Document) -> dict[str, str]:
    """The variant and ``--set`` arguments a spec was expanded with (empty when none): recorded
    beside the expanded spec in checkpoints and safetensors metadata, for the record."""
    out = {"variant": doc.variant} if doc.variant is not None else {}
    sets = list(dict.fromkeys(doc.overrides.values()))
    return {**out, "overrides": json.dumps(sets)} if sets else out


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` holding a NaN or an infinity."""
    import torch

    return [
        name
        for name, tensor in state.items()
        if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point()
        and not bool(torch.isfinite(tensor).all())
    ]


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def save_model(
    model: torch.nn.Module,
    spec: Spec,
    path: str | os.PathLike[str],
    *,
    made_from: Spec | None = None,
    state: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Write the weights as safetensors with the spec and a digest of both in the metadata.

    ``state``: the weights to write instead of ``model``'s own (a state_dict of the same model,
    e.g. the best epoch's, or an EMA of the weights).

    The spec is stored expanded (so :func:`~torchspec.builder.load_model` rebuilds the same
    network); the variant and ``--set`` arguments of ``made_from`` (default: ``spec``) go in
    ``torchspec.variant`` and ``torchspec.overrides``. Non-finite weights are never written: a
    SpecError names the file and the tensors.
    """
    from safetensors.torch import save, save_file

    file = os.fspath(path)
    weights = model.state_dict() if state is None else state
    state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    bad = nonfinite_tensors(state)
    if bad:
        raise SpecError.single(
            file,
            f"refusing to write {file}: the weights are not finite (NaN or inf in {_names(bad)})",
            hints=["the model diverged: lower the learning rate or set train.grad_clip"],
        )
    metadata = {SPEC_METADATA_KEY: json.dumps(spec.to_data()), FORMAT_METADATA_KEY: "1"}
    metadata.update({f"torchspec.{k}": v for k, v in provenance((made_from or spec).document).items()})
    data = save(state, metadata=metadata)  # the exact bytes the file will hold for each tensor
    metadata[DIGEST_METADATA_KEY] = digest(data, parse(data, file))
    del data
    with atomic_path(path) as tmp:  # a unique temp file renamed into place: never a torn file
        save_file(state, tmp, metadata=metadata)


NO_VERIFY_HINT = (
    "if you trust this file, skip the check: --no-verify (eval, predict) or "
    "torchspec.load_model(path, verify=False)"
)
SAFETENSORS_HINTS = ("pass a model.safetensors written by `torchspec train` or `torchspec build -o`",)


def read_safetensors(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[Spec, dict[str, torch.Tensor]]:
    """(spec, state_dict) from a .safetensors file written by torchspec; a SpecError naming the file
    otherwise. Before any tensor is loaded: the file must be a regular file that fits in memory, its
    header sound, its embedded spec a valid spec and its tensors' names and shapes the spec's
    analytic state; then (``verify``) the digest in its metadata must match its tensors, and every
    weight must be finite. ``verify=False`` skips only the digest, for files from elsewhere."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    file = os.fspath(path)
    handle, _ = open_regular(file, "safetensors file", SAFETENSORS_HINTS)
    with handle:
        data = handle.read()
    header = parse(data, file)
    if SPEC_METADATA_KEY not in header.metadata:
        raise not_torchspec(file, "its metadata carries no torchspec spec", SAFETENSORS_HINTS)
    spec = load_embedded_spec(header.metadata[SPEC_METADATA_KEY], file)
    check_state(
        infer_shapes(spec).state_shapes(),
        {name: entry.shape for name, entry in header.tensors.items()},
        file,
        ("the file was changed after torchspec wrote it, or it was not written by torchspec",),
        subject="the tensors in the file do not match the spec embedded in it",
    )
    if verify:
        stored = header.metadata.get(DIGEST_METADATA_KEY)
        if stored is None:
            raise SpecError.single(
                file,
                f"{file} carries no digest of its tensors, so its weights cannot be verified",
                hints=["files written by torchspec carry one", NO_VERIFY_HINT],
            )
        if stored != digest(data, header):
            raise SpecError.single(
                file,
                f"{file} is damaged: its tensors or spec do not match the digest written with them "
                "(the file was changed after it was written)",
                hints=["use an intact copy, or write the file again", NO_VERIFY_HINT],
            )
    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError.single(
            file, f"cannot read {file}: not a valid safetensors file ({reason})", hints=SAFETENSORS_HINTS
        ) from None
    bad = nonfinite_tensors(state)
    if bad:
        raise SpecError.single(
            file,
            f"{file} holds non-finite weights (NaN or inf in {_names(bad)})",
            hints=["the run that wrote it diverged: use an earlier checkpoint or train again"],
        )
    return spec, state
