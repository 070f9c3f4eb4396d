"""Artefacts (.ckpt, .safetensors) are verified before they are trusted.

Rules tested broadly, over many crafted files each:
* a flipped byte anywhere in a checkpoint or a .safetensors file is an error or changes nothing;
  it never loads different weights (zip CRCs; the digest torchspec writes into the metadata);
* a truncated file is "truncated or not a ... file", an empty one "empty";
* a directory, FIFO, device (also behind a symlink), socket, broken link or missing path is refused
  with what it is, before it is read (a FIFO never blocks);
* an embedded spec is data, never a path: anything but a mapping is "not a torchspec file";
* a file's tensors are compared with the spec's analytic state before any model is built;
* a model that would not fit in the available memory is refused with what it would take.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import cli as _cli
from conftest import process as _process
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import torchspec
from torchspec import SpecError
from torchspec.builder import build_from_report, read_safetensors
from torchspec.training.checkpoint import load_checkpoint
from torchspec.training.parts import load_weights


@pytest.fixture(scope="module")
def run(artefact_run: Path) -> Path:
    return artefact_run


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _offsets(size: int, count: int = 48) -> list[int]:
    """Offsets spread over the whole file, both ends included."""
    return sorted({0, 1, 7, 8, size - 1, *(i * size // count for i in range(count))})


def _flipped(src: Path, dst: Path, offset: int, mask: int) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= mask
    dst.write_bytes(bytes(data))
    return dst


# -- a flipped byte never loads different weights -------------------------------------------------
@pytest.mark.parametrize("mask", [0x01, 0x40, 0x80])
def test_flipped_byte_in_a_checkpoint_is_refused_or_changes_nothing(
    run: Path, tmp_path: Path, mask: int
) -> None:
    src = run / "run" / "last.ckpt"
    good = load_checkpoint(str(src))
    refused = 0
    for offset in _offsets(src.stat().st_size):
        bad = _flipped(src, tmp_path / f"{offset}.ckpt", offset, mask)
        try:
            state = load_checkpoint(str(bad))
        except SpecError as err:
            assert str(bad) in str(err) and "Traceback" not in str(err)
            refused += 1
            continue
        assert _same(state, good), f"byte {offset} ^ {mask:#x} loaded a different checkpoint"
    assert refused >= 30  # the sweep hit data, not only padding


@pytest.mark.parametrize("mask", [0x01, 0x40, 0x80])
def test_flipped_byte_in_safetensors_is_refused_or_changes_nothing(
    run: Path, tmp_path: Path, mask: int
) -> None:
    src = run / "run" / "model.safetensors"
    spec, good = read_safetensors(src)
    refused = 0
    for offset in _offsets(src.stat().st_size, 64):
        bad = _flipped(src, tmp_path / f"{offset}.safetensors", offset, mask)
        try:
            found_spec, state = read_safetensors(bad)
        except SpecError as err:
            assert str(bad) in str(err)
            refused += 1
            continue
        assert _same(state, good) and found_spec.to_data() == spec.to_data(), f"byte {offset} ^ {mask:#x}"
    assert refused >= 40


def test_flipped_exponent_bit_is_refused_unless_verification_is_skipped(run: Path, tmp_path: Path) -> None:
    src = run / "run" / "model.safetensors"
    data = bytearray(src.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start + 3] ^= 0x40  # the high byte of the first float32: its exponent
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    for args in (
        ("predict", str(bad), str(run / "x.npy")),
        ("eval", str(run / "spec.yaml"), "--checkpoint", str(bad)),
    ):
        result = _cli(*args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "damaged" in result.stderr and "--no-verify" in result.stderr
    assert _cli("predict", str(bad), str(run / "x.npy"), "--no-verify").returncode == 0
    with pytest.raises(SpecError, match="damaged"):
        torchspec.load_model(bad)
    assert torchspec.load_model(bad, verify=False) is not None


def test_a_file_without_digest_is_refused_unless_verification_is_skipped(run: Path, tmp_path: Path) -> None:
    spec, state = read_safetensors(run / "run" / "model.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file(state, str(plain), metadata={"torchspec.spec": json.dumps(spec.to_data())})
    with pytest.raises(SpecError, match="carries no digest"):
        torchspec.load_model(plain)
    model = torchspec.load_model(plain, verify=False)
    assert _same(model.state_dict(), state)
    assert _cli("predict", str(plain), str(run / "x.npy")).returncode == 1
    assert _cli("predict", str(plain), str(run / "x.npy"), "--no-verify").returncode == 0


# -- truncated, empty and non-regular files -------------------------------------------------------
@pytest.mark.parametrize("name", ["last.ckpt", "model.safetensors"])
def test_truncated_files_are_named_as_truncated(run: Path, tmp_path: Path, name: str) -> None:
    src = (run / "run" / name).read_bytes()
    for cut in sorted({1, 4, 8, 9, 64, 200, len(src) // 3, len(src) // 2, len(src) - 100, len(src) - 1}):
        bad = tmp_path / f"cut{cut}{Path(name).suffix}"
        bad.write_bytes(src[:cut])
        with pytest.raises(SpecError) as info:
            load_weights(str(bad))
        assert "truncated or not a" in str(info.value) and str(bad) in str(info.value), cut
    empty = tmp_path / f"empty{Path(name).suffix}"
    empty.write_bytes(b"")
    with pytest.raises(SpecError, match=r"it is empty \(0 bytes\)"):
        load_weights(str(empty))


def _specials(tmp_path: Path, suffix: str) -> dict[str, tuple[Path, str]]:
    """Paths that are not regular files, and what the error must call them."""
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    broken = tmp_path / f"broken{suffix}"
    broken.symlink_to(tmp_path / "nowhere")
    sock = tmp_path / f"s{suffix}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    return {
        "fifo": (fifo, "a FIFO (named pipe)"),
        "device": (zero, "a character device (a symbolic link to /dev/zero)"),
        "directory": (folder, "a directory"),
        "broken link": (broken, "a symbolic link to"),
        "socket": (sock, "a socket"),
        "missing": (tmp_path / f"missing{suffix}", "it does not exist"),
    }


@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_non_regular_files_are_refused_with_what_they_are(tmp_path: Path, suffix: str) -> None:
    for kind, (path, what) in _specials(tmp_path, suffix).items():
        with pytest.raises(SpecError) as info:
            load_weights(str(path))
        assert what in str(info.value) and str(path) in str(info.value), kind
    with pytest.raises(SpecError, match="a FIFO"):
        torchspec.load_model(
            tmp_path / "fifo.safetensors" if suffix == ".safetensors" else tmp_path / "fifo.ckpt"
        )


def test_the_commands_refuse_a_fifo_without_blocking(run: Path, tmp_path: Path) -> None:
    for suffix in (".ckpt", ".safetensors"):
        fifo = tmp_path / f"pipe{suffix}"
        os.mkfifo(fifo)
        result = _process("predict", str(fifo), str(run / "x.npy"))  # a blocking open would time out
        assert result.returncode == 1 and "a FIFO (named pipe), not a regular file" in result.stderr
        result = _cli("eval", str(run / "spec.yaml"), "--checkpoint", str(fifo))
        assert result.returncode == 1 and "a FIFO (named pipe), not a regular file" in result.stderr


# -- an embedded spec is data, never a path --------------------------------------------------------
SECRET = "SECRET-FIRST-LINE"
NOT_MAPPINGS = ['"{secret}"', '"spec.yaml"', "[1, 2]", "[]", "5", "3.5", "true", "null", '"{"', "{not json"]


@pytest.mark.parametrize("raw", NOT_MAPPINGS)
def test_an_embedded_spec_that_is_not_a_mapping_is_not_a_torchspec_file(
    run: Path, tmp_path: Path, raw: str
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text(SECRET + "\n")
    raw = raw.replace("{secret}", str(secret))
    ckpt = torch.load(run / "run" / "last.ckpt", weights_only=True)
    files = [tmp_path / "m.ckpt", tmp_path / "m.safetensors"]
    torch.save({**ckpt, "spec": raw}, files[0])
    save_file(ckpt["model"], str(files[1]), metadata={"torchspec.spec": raw})
    for file in files:
        with pytest.raises(SpecError, match="is not a torchspec file: its embedded spec") as info:
            load_weights(str(file))
        assert SECRET not in str(info.value)
        result = _cli("predict", str(file), str(run / "x.npy"))
        assert result.returncode == 1 and "not a torchspec file" in result.stderr
        assert SECRET not in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(SpecError, match="not a torchspec file"):
        torchspec.load_model(files[1])


# -- the analytic state is compared before anything is built ---------------------------------------
@pytest.mark.parametrize("spec", sorted(str(p) for p in Path("specs").glob("*.*")))
def test_analytic_state_is_the_built_models_state_dict(spec: str) -> None:
    report = torchspec.infer_shapes(spec)
    model = build_from_report(report, device="meta")  # no memory, even for C3D
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == report.state_shapes()
    assert list(model.state_dict()) == list(report.state_shapes())


def _relabel(state: dict[str, torch.Tensor], how: str) -> dict[str, torch.Tensor]:
    state = dict(state)
    if how == "renamed":
        state["hidden.weights"] = state.pop("hidden.weight")
    elif how == "missing":
        del state["norm.running_var"]
    elif how == "extra":
        state["head.extra"] = torch.zeros(2)
    elif how == "shape":
        state["head.weight"] = torch.zeros(3, 9)
    elif how == "0-d":
        state["norm.num_batches_tracked"] = torch.zeros(1, dtype=torch.int64)
    return state


@pytest.mark.parametrize("how", ["renamed", "missing", "extra", "shape", "0-d"])
def test_tensors_that_do_not_fit_the_spec_give_a_per_layer_diff_before_building(
    run: Path, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, state = read_safetensors(run / "run" / "model.safetensors")
    bad = tmp_path / "bad.safetensors"
    save_file(_relabel(state, how), str(bad), metadata={"torchspec.spec": json.dumps(spec.to_data())})
    ckpt = torch.load(run / "run" / "last.ckpt", weights_only=True)
    torch.save({**ckpt, "model": _relabel(ckpt["model"], how)}, tmp_path / "bad.ckpt")

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was built before the tensors were compared with the spec")

    monkeypatch.setattr("torchspec.builder.build_from_report", no_build)
    monkeypatch.setattr("torchspec.training.inference.build_from_report", no_build)
    loads = [
        (bad, lambda: torchspec.load_model(bad, verify=False)),
        (bad, lambda: load_weights(str(bad), verify=False)),
        (tmp_path / "bad.ckpt", lambda: load_weights(str(tmp_path / "bad.ckpt"))),
    ]
    for file, load in loads:
        with pytest.raises(
            SpecError, match=r"not match the spec embedded in it \(\d+ tensors? differ"
        ) as info:
            load()
        text = str(info.value)
        assert str(file) in text and "layer" in text and "expected" in text and "found" in text


def test_a_tiny_file_claiming_a_huge_model_costs_nothing(tmp_path: Path) -> None:
    huge = {"name": "huge", "input": [100000], "layers": [{"type": "Linear", "out_features": 100000}]}
    file = tmp_path / "huge.safetensors"
    save_file({"0.weight": torch.zeros(2, 2)}, str(file), metadata={"torchspec.spec": json.dumps(huge)})
    assert file.stat().st_size < 4000
    with pytest.raises(SpecError, match=r"\[100000, 100000\]"):
        torchspec.load_model(file)  # 40 GB of weights if it were built: refused from the header alone


def test_a_model_that_does_not_fit_in_memory_is_refused(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torchspec.memory.available_bytes", lambda device: 1000)
    with pytest.raises(SpecError, match=r"would take .* of memory, but only 1000 B is available"):
        torchspec.load_model(run / "run" / "model.safetensors")


# -- hostile headers: only SpecErrors, whatever the header declares --------------------------------
_DIMS = st.lists(st.integers(0, 2**40), max_size=4)
_ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "I64", "BF16", "F99", 3]),
        "shape": st.one_of(_DIMS, st.just("x")),
        "data_offsets": st.one_of(st.lists(st.integers(-2, 2**41), min_size=2, max_size=2), st.just([0])),
    }
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    entries=st.dictionaries(st.sampled_from(["0.weight", "0.bias", "x", ""]), _ENTRY, max_size=3),
    metadata=st.one_of(st.none(), st.just({"torchspec.spec": '{"name": "m"}'}), st.just([1])),
    data=st.binary(max_size=64),
    declared=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
)
def test_hostile_safetensors_headers_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory,
    entries: dict[str, Any],
    metadata: Any,
    data: bytes,
    declared: int | None,
) -> None:
    header: dict[str, Any] = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    length = len(raw) if declared is None else declared
    file = tmp_path_factory.mktemp("hostile") / "h.safetensors"
    file.write_bytes(length.to_bytes(8, "little") + raw + data)
    with pytest.raises(SpecError) as info:
        read_safetensors(file)
    assert str(file) in str(info.value)
