"""The folder sources on real files: frame-exact clip sampling in every container, skipping and
refusing bad files (corrupt, zero-length, FIFOs, links), list files, declared transforms against
torchvision's own, and the static checks of clip and crop sizes (torch-free)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from media import encode
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from torchspec.training.data import load_data, make_loader
from torchspec.training.folder_config import VideoFolder
from torchspec.training.folders import FolderDataset
from torchspec.training.resolve import resolve_spec
from torchspec.training.transform_config import TRANSFORMS
from torchspec.training.transforms import CLASSES, make_pipeline
from torchspec.training.video import clip_indices, probe, read_frames

STEP = 6  # frame i has every pixel at i * STEP: the index can be read back from the pixels
CODECS = {".mp4": "libx264", ".avi": "mpeg4", ".mkv": "libx264", ".webm": "libvpx", ".mov": "mpeg4"}


def _indexed(n: int, size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size, 3), i * STEP, np.uint8) for i in range(n)])


def _index_of(frame: Any) -> int:
    return round(float(np.asarray(frame, dtype=np.float64).mean()) / STEP)


@pytest.fixture(scope="module")
def indexed_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("indexed")
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for ext, codec in CODECS.items():
            encode(root / cls / f"clip{ext}", _indexed(40), codec, gop=8)
    return root


@pytest.mark.parametrize("ext", list(CODECS))
@pytest.mark.parametrize(
    "indices", [[0, 1, 2, 3], [5, 7, 9, 11], [17, 18, 19], [30, 33, 36, 39], [8], [38, 39, 39], [0, 39]]
)
def test_read_frames_returns_exactly_the_frames_asked_for(
    indexed_videos: Path, ext: str, indices: list[int]
) -> None:
    path = str(indexed_videos / "a" / f"clip{ext}")
    info = probe(path, 2**25)
    assert info.frames == 40 and info.fps == 16
    frames = read_frames(path, indices, info.fps)
    assert frames.shape == (len(indices), 32, 32, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == indices


def _spec(tmp_path: Path, input_: list[int], data: str, name: str = "spec") -> Path:
    path = tmp_path / f"{name}.yaml"
    head = (
        "{type: Conv3d, out_channels: 2, kernel_size: 1}"
        if len(input_) == 4
        else "{type: Conv2d, out_channels: 2, kernel_size: 1}"
    )
    path.write_text(
        f"name: t\ninput: {input_}\nlayers:\n  - {head}\n  - Flatten\n  - {{type: Linear, out_features: 2}}\n"
        f"train:\n  data: {data}\n  batch_size: 2\n"
    )
    return path


def _data(spec: Path) -> Any:
    parsed, config = resolve_spec(spec)
    return load_data(config, parsed.input, [2], file=str(spec), base_dir=str(spec.parent), say=lambda _: None)


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".webm"])
@pytest.mark.parametrize(("frames", "stride", "clips"), [(4, 3, 3), (8, 1, 1), (5, 4, 2), (4, 1, 4)])
def test_clip_sampling_is_frame_exact(tmp_path: Path, ext: str, frames: int, stride: int, clips: int) -> None:
    """Validation clips are centred (one) or evenly spaced (several); training clips start anywhere
    in range, the same for the same (seed, epoch, sample) and different across epochs."""
    for cls in ("a", "b"):
        (tmp_path / "v" / cls).mkdir(parents=True)
        encode(tmp_path / "v" / cls / f"clip{ext}", _indexed(40), CODECS[ext], gop=8)
    data = f"{{source: video-folder, root: v, frame_stride: {stride}, clips_per_video: {clips}, "
    data += "val_fraction: 0.5}"
    loaded = _data(_spec(tmp_path, [3, frames, 32, 32], data))
    span = (frames - 1) * stride + 1
    room = 40 - span
    val = loaded.val
    got = [[_index_of(val[i][0][:, t] * 255) for t in range(frames)] for i in range(len(val))]
    starts = [room // 2] if clips == 1 else [round(k * room / (clips - 1)) for k in range(clips)]
    assert got == [clip_indices(40, frames, stride, s) for s in starts]
    train = loaded.train
    base: FolderDataset = train.dataset
    seen = set()
    for epoch in range(6):
        base.epoch_cell.fill_(epoch)
        for i in range(len(train)):
            clip = [_index_of(train[i][0][:, t] * 255) for t in range(frames)]
            assert clip == [_index_of(train[i][0][:, t] * 255) for t in range(frames)]  # same draw again
            start = clip[0]
            assert 0 <= start <= room and clip == clip_indices(40, frames, stride, start)
            seen.add(start)
    assert len(seen) > 1  # the training position really is random


def test_fps_sets_the_stride_from_the_video_rate(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / "v" / cls).mkdir(parents=True)
        encode(tmp_path / "v" / cls / "clip.mp4", _indexed(40), "libx264")  # 16 fps
    loaded = _data(
        _spec(tmp_path, [3, 4, 32, 32], "{source: video-folder, root: v, fps: 4, val_fraction: 0.5}")
    )
    clip = [_index_of(loaded.val[0][0][:, t] * 255) for t in range(4)]
    assert clip == clip_indices(40, 4, 4.0, (40 - 13) // 2)  # 16 / 4: every 4th frame, centred


def test_frame_folder_sampling_is_frame_exact(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        folder = tmp_path / "f" / cls / "video"
        folder.mkdir(parents=True)
        for i, frame in enumerate(_indexed(30)):
            Image.fromarray(frame).save(folder / f"{i:05d}.png")
    loaded = _data(
        _spec(tmp_path, [3, 5, 32, 32], "{source: frame-folder, root: f, frame_stride: 2, val_fraction: 0.5}")
    )
    clip = [_index_of(loaded.val[0][0][:, t] * 255) for t in range(5)]
    assert clip == clip_indices(30, 5, 2, (30 - 9) // 2)
    assert loaded.val[0][0].dtype == torch.float32 and loaded.val[0][0].shape == (3, 5, 32, 32)


# -- transforms ---------------------------------------------------------------------------------------
CASES: list[tuple[list[Any], list[Any]]] = [
    ([{"type": "RandomResizedCrop", "size": 16}], [v2.RandomResizedCrop(16)]),
    (
        [{"type": "Resize", "size": 20}, {"type": "RandomCrop", "size": [16, 16]}, "RandomHorizontalFlip"],
        [v2.Resize(20), v2.RandomCrop([16, 16]), v2.RandomHorizontalFlip()],
    ),
    (
        [{"type": "RandomResizedCrop", "size": 16, "scale": [0.3, 1.0], "interpolation": "bicubic"},
         {"type": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}],
        [v2.RandomResizedCrop(16, scale=(0.3, 1.0), interpolation=v2.InterpolationMode.BICUBIC),
         v2.ColorJitter(0.4, 0.4, 0.4, 0.1)],
    ),
    (
        [{"type": "Resize", "size": [16, 16]},
         {"type": "Normalize", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.4]}],
        [v2.Resize([16, 16]), v2.ToDtype(torch.float32, scale=True),
         v2.Normalize([0.4, 0.5, 0.6], [0.2, 0.3, 0.4])],
    ),
    (
        [{"type": "CenterCrop", "size": 16}, {"type": "RandomRotation", "degrees": 20},
         {"type": "GaussianBlur", "kernel_size": 3}, {"type": "RandomGrayscale", "p": 0.5},
         "RandomVerticalFlip"],
        [v2.CenterCrop(16), v2.RandomRotation(20), v2.GaussianBlur(3), v2.RandomGrayscale(0.5),
         v2.RandomVerticalFlip()],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("declared", "theirs"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_declared_transforms_match_torchvision_on_the_same_input_and_seed(
    declared: list[Any], theirs: list[Any], seed: int
) -> None:
    steps = VideoFolder.model_validate(
        {"source": "video-folder", "root": "x", "transform": declared}
    ).transform
    ours = make_pipeline(steps, (3, 6, 16, 16))
    frames = torch.randint(
        0, 256, (6, 3, 24, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )
    if not any(isinstance(t, v2.ToDtype) for t in theirs):
        theirs = [*theirs, v2.ToDtype(torch.float32, scale=True)]
    torch.manual_seed(seed)
    expected = v2.Compose(theirs)(tv_tensors.Video(frames)).as_subclass(torch.Tensor).permute(1, 0, 2, 3)
    torch.manual_seed(seed)
    got = ours(frames)
    assert got.dtype == torch.float32 and got.shape == (3, 6, 16, 16)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_random_transforms_are_the_same_for_every_frame_of_a_clip() -> None:
    declared = [
        {"type": "RandomResizedCrop", "size": 16},
        "RandomHorizontalFlip",
        {"type": "ColorJitter", "brightness": 0.5, "hue": 0.2},
        {"type": "RandomRotation", "degrees": 30},
    ]
    steps = VideoFolder.model_validate(
        {"source": "video-folder", "root": "x", "transform": declared}
    ).transform
    pipeline = make_pipeline(steps, (3, 5, 16, 16))
    frame = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    for seed in range(10):
        torch.manual_seed(seed)
        clip = pipeline(frame.repeat(5, 1, 1, 1))  # (3, 5, 16, 16)
        for t in range(1, 5):
            assert torch.equal(clip[:, t], clip[:, 0])


def test_every_declared_transform_has_its_torchvision_class() -> None:
    assert set(TRANSFORMS) == set(CLASSES)
    for name, cls in CLASSES.items():
        assert cls is getattr(v2, name) and cls.__module__.startswith("torchvision.transforms.v2")


def test_defaults_resize_the_short_side_then_centre_crop_and_scale_to_unit_range() -> None:
    frames = torch.randint(0, 256, (4, 3, 30, 50), dtype=torch.uint8)
    got = make_pipeline(None, (3, 4, 16, 20))(frames)
    expected = v2.Compose([v2.Resize(20), v2.CenterCrop([16, 20]), v2.ToDtype(torch.float32, scale=True)])(
        tv_tensors.Video(frames)
    )
    torch.testing.assert_close(got, expected.as_subclass(torch.Tensor).permute(1, 0, 2, 3), rtol=0, atol=0)
    assert float(got.min()) >= 0.0 and float(got.max()) <= 1.0
    gray = make_pipeline(None, (1, 16, 20))(frames[0])  # a 1-channel input: grayscale, (1, H, W)
    assert gray.shape == (1, 16, 20)


def test_ddp_ranks_read_disjoint_shares_and_a_sample_does_not_depend_on_who_loads_it(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / "v" / cls).mkdir(parents=True)
        for n in range(3):
            encode(tmp_path / "v" / cls / f"clip{n}.mp4", _indexed(40), "libx264", gop=8)
    data = "{source: video-folder, root: v, clips_per_video: 2, val_fraction: 0}"
    spec = _spec(tmp_path, [3, 4, 32, 32], data)
    parsed, config = resolve_spec(spec)
    dataset = load_data(config, parsed.input, [2], file=str(spec), base_dir=str(tmp_path), say=print).train
    single = {i: dataset[i][0] for i in range(len(dataset))}  # epoch 0, loaded in this process
    shares = []
    for rank in range(2):
        loader, sampler = make_loader(dataset, config, train=True, pin_memory=False, rank=rank, world_size=2)
        sampler.set_epoch(0)
        order = list(sampler)
        shares.append(order)
        batches = torch.cat([x for x, _ in loader])
        assert torch.equal(batches, torch.stack([single[i] for i in order]))
    assert not set(shares[0]) & set(shares[1]) and sorted(shares[0] + shares[1]) == list(range(12))
    # spawned workers (macOS, Windows) receive the dataset pickled: it must survive the trip
    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[3][0], single[3])
