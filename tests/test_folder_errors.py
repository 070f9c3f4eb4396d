"""Mistakes and hostile files with the folder sources: located static errors (torch-free `check`),
skipped and refused files (corrupt, zero-length, truncated, FIFOs, links, paths outside root), list
files, and the clear errors before training (no usable file, one class)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from media import encode

from torchspec.errors import SpecError
from torchspec.spec import load_spec
from torchspec.training.data import load_data
from torchspec.training.resolve import resolve_spec

ROOT = Path(__file__).resolve().parent.parent
CLIP = "{type: Conv3d, out_channels: 2, kernel_size: 1}"
IMAGE = "{type: Conv2d, out_channels: 2, kernel_size: 1}"


def _write(tmp_path: Path, input_: list[int], data: str, name: str = "spec") -> Path:
    path = tmp_path / f"{name}.yaml"
    head = CLIP if len(input_) == 4 else IMAGE
    path.write_text(
        f"name: t\ninput: {input_}\nlayers:\n  - {head}\n  - Flatten\n  - {{type: Linear, out_features: 2}}\n"
        f"train:\n  batch_size: 2\n  data:\n{data}"
    )
    return path


VF = "    source: video-folder\n    root: d\n"
FF = "    source: frame-folder\n    root: d\n"
IF = "    source: image-folder\n    root: d\n"
STATIC = [
    # (input, data lines, text on the reported line, words in the message)
    ([3, 16, 112, 112], VF + "    frames: 8\n", "frames: 8", "frames is 8"),
    ([3, 112, 112], VF, "source: video-folder", "clips [C, T, H, W]"),
    ([3, 4, 32, 32], FF + "    frames: 5\n", "frames: 5", "clips of 4 frames"),
    ([3, 8, 32, 32], IF, "source: image-folder", "images [C, H, W]"),
    (
        [3, 16, 112, 112],
        VF + "    transform:\n      - {type: CenterCrop, size: 100}\n",
        "size: 100",
        "100x100",
    ),
    (
        [3, 16, 112, 112],
        VF + "    eval_transform:\n      - {type: RandomResizedCrop, size: [112, 100]}\n",
        "size: [112, 100]",
        "112x100",
    ),
    (
        [3, 64, 64],
        IF + "    transform:\n      - {type: Normalize, mean: [0.5, 0.5], std: [0.2, 0.2]}\n",
        "mean: [0.5, 0.5]",
        "2 means",
    ),
    ([4, 64, 64], IF, "input: [4, 64, 64]", "has 4"),
    (
        [3, 64, 64],
        IF + "    transform: [{type: RandomResizdCrop, size: 64}]\n",
        "RandomResizdCrop",
        "unknown transform 'RandomResizdCrop'",
    ),
    (
        [3, 64, 64],
        IF + "    transform: [{type: Resize, siz: 64}]\n",
        "siz: 64",
        "no parameter 'siz'",
    ),
    ([3, 8, 32, 32], VF + "    frames: 0\n", "frames: 0", "frames"),
    ([3, 8, 32, 32], VF + "    fps: 5\n    frame_stride: 2\n", "", "not both"),
    ([3, 8, 32, 32], VF + "    on_error: ignore\n", "on_error", "on_error"),
    ([3, 8, 32, 32], VF + "    transform: [{type: eval}]\n", "eval", "unknown"),
]


@pytest.mark.parametrize(("input_", "data", "line_text", "words"), STATIC)
def test_declared_sizes_and_transforms_are_located_errors(
    tmp_path: Path, input_: list[int], data: str, line_text: str, words: str
) -> None:
    spec = _write(tmp_path, input_, data)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    problem = next((p for p in info.value.problems if words in p.message), None)
    assert problem is not None, info.value
    assert problem.line > 0
    assert line_text in spec.read_text().splitlines()[problem.line - 1]
    with pytest.raises(SpecError):  # train/eval resolve the same way
        resolve_spec(spec)


def test_the_did_you_mean_hints_name_the_transform_and_the_argument(tmp_path: Path) -> None:
    data = IF + "    transform: [RandomHorizontalFlp, {type: Resize, sise: 9}]\n"
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, [3, 9, 9], data))
    hints = [h for p in info.value.problems for h in p.hints]
    assert any("RandomHorizontalFlip" in h for h in hints) and any("'size'" in h for h in hints)


@pytest.mark.parametrize("spec", ["specs/c3d_ucf101.yaml"])
def test_check_of_a_folder_spec_imports_neither_torch_nor_av(spec: str) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "torchspec", "check", spec],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "torchspec.training.folder_config" in imported  # the data section really was checked
    assert not imported & {"torch", "av", "torchvision", "PIL"}


# -- files --------------------------------------------------------------------------------------------
def _clip(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)


def _videos(root: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 2) -> Path:
    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            encode(root / cls / f"v{n}.mp4", _clip(10 * c + n), "libx264")
    return root


@pytest.fixture
def alarm() -> Iterator[None]:
    # opening a FIFO for reading blocks forever: a bug here must fail the test, not hang it
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked (a FIFO was opened?)"))
    signal.alarm(60)
    yield
    signal.alarm(0)


def _load(tmp_path: Path, data: str, input_: list[int] | None = None) -> tuple[Any, list[str]]:
    said: list[str] = []
    spec = _write(tmp_path, input_ or [3, 4, 16, 16], data)
    parsed, config = resolve_spec(spec)
    out = load_data(config, parsed.input, [2], file=str(spec), base_dir=str(tmp_path), say=said.append)
    return out, said


def test_bad_files_are_skipped_with_a_warning_each_and_a_count(tmp_path: Path, alarm: None) -> None:
    root = _videos(tmp_path / "v")
    good = (root / "a" / "v0.mp4").read_bytes()
    (root / "a" / "zero.mp4").write_bytes(b"")
    (root / "a" / "corrupt.avi").write_bytes(b"\x00garbage" * 50)
    (root / "a" / "truncated.mp4").write_bytes(good[: len(good) // 3])
    os.mkfifo(root / "b" / "pipe.mkv")
    os.symlink(root / "b" / "pipe.mkv", root / "b" / "link_to_pipe.mp4")
    os.symlink(tmp_path / "nowhere.mp4", root / "b" / "dangling.mp4")
    os.symlink(root / "a" / "v1.mp4", root / "b" / "link_to_video.mp4")  # a link to a regular file: kept
    data, said = _load(tmp_path, "    source: video-folder\n    root: v\n    val_fraction: 0\n")
    bad = ["zero.mp4", "corrupt.avi", "truncated.mp4", "pipe.mkv", "link_to_pipe.mp4", "dangling.mp4"]
    for name in bad:
        assert sum(name in line and line.startswith("warning: skipping") for line in said) == 1, said
    assert any(f"skipped {len(bad)} unusable of 11 files" in line for line in said)
    assert len(data.train) == 5  # 4 videos and the link to one
    for i in range(5):
        x, y = data.train[i]
        assert x.shape == (3, 4, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_on_error_raise_stops_at_the_bad_file(tmp_path: Path) -> None:
    root = _videos(tmp_path / "v")
    (root / "b" / "corrupt.mp4").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(SpecError) as info:
        _load(tmp_path, "    source: video-folder\n    root: v\n    on_error: raise\n")
    assert "corrupt.mp4" in str(info.value) and "train.data (video-folder)" in str(info.value)


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("none", "no usable files"),
        ("broken", "no usable files"),
        ("one-class", "only one class"),
        ("missing", "is not a folder"),
        ("huge", "no usable files"),
    ],
)
def test_nothing_to_train_on_is_a_clear_error_before_training(tmp_path: Path, setup: str, words: str) -> None:
    extra = ""
    if setup == "none":
        (tmp_path / "v" / "a").mkdir(parents=True)
        (tmp_path / "v" / "b").mkdir(parents=True)
    elif setup == "broken":
        for cls in ("a", "b"):
            (tmp_path / "v" / cls).mkdir(parents=True)
            (tmp_path / "v" / cls / "x.mp4").write_bytes(b"junk" * 10)
    elif setup == "one-class":
        _videos(tmp_path / "v", ("a",), per_class=3)
    elif setup == "huge":
        _videos(tmp_path / "v")
        extra = "    max_pixels: 100\n"  # the 16x16 frames are over the limit
    with pytest.raises(SpecError) as info:
        _load(tmp_path, f"    source: video-folder\n    root: v\n{extra}")
    assert words in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "spec.yaml"))


@pytest.mark.parametrize("style", ["csv", "ucf"])
def test_list_files_give_paths_and_labels_and_stay_inside_root(tmp_path: Path, style: str) -> None:
    _videos(tmp_path / "v", ("ApplyLipstick", "Biking"), per_class=2)
    outside = tmp_path / "outside.mp4"
    encode(outside, _clip(99), "libx264")
    if style == "csv":
        text = "path,label\nApplyLipstick/v0.mp4,ApplyLipstick\nBiking/v1.mp4,1\n"
        text += "Biking/v0.mp4,Biking\n../outside.mp4,0\n"
    else:  # UCF-101 trainlist: the class from the folder; the 1-based index is ignored
        text = "ApplyLipstick/v0.mp4 1\nBiking/v1.mp4 2\nBiking/v0.mp4 2\n../outside.mp4 1\n"
    (tmp_path / "list.txt").write_text(text)
    listed = "    source: video-folder\n    root: v\n    list_file: list.txt\n    val_fraction: 0\n"
    data, said = _load(tmp_path, listed)
    assert len(data.train) == 3 and data.classes == 2
    assert sorted(int(data.train[i][1]) for i in range(3)) == [0, 1, 1]
    assert any("outside root" in line for line in said)


def test_image_folder_skips_broken_images_and_yields_the_input_shape(tmp_path: Path) -> None:
    from PIL import Image

    for c, cls in enumerate(("cat", "dog")):
        (tmp_path / "i" / cls).mkdir(parents=True)
        for n in range(3):
            pixels = np.full((20 + n, 30, 3), 40 * c + n, np.uint8)
            Image.fromarray(pixels).save(tmp_path / "i" / cls / f"{n}.png")
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "i" / cls / "gray.jpg")
    (tmp_path / "i" / "cat" / "empty.png").write_bytes(b"")
    (tmp_path / "i" / "cat" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    data, said = _load(tmp_path, "    source: image-folder\n    root: i\n    val_fraction: 0\n", [3, 16, 16])
    assert any("empty.png" in line for line in said)
    assert len(data.train) == 9  # 4 + 4 and the corrupt one (found unreadable when loaded)
    shapes = {tuple(data.train[i][0].shape) for i in range(len(data.train))}
    assert shapes == {(3, 16, 16)}
    gray, _ = _load(tmp_path, "    source: image-folder\n    root: i\n    val_fraction: 0\n", [1, 8, 8])
    assert tuple(gray.train[0][0].shape) == (1, 8, 8)
