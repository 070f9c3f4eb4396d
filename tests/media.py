"""Real media files for the folder-source tests, written with PyAV and Pillow (no downloads).

``write_videos`` encodes synthetic-motion's moving squares (one class per direction) as .mp4 (H.264)
and .avi (MPEG-4 Part 2); ``write_frames`` stores the same clips as JPEG frame folders;
``write_shapes`` draws squares, discs and triangles as PNG images. Each adds a corrupt file and a
zero-length file to the first class, which a source must skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from torchspec.training.data import synthetic_motion

DIRECTIONS = ["east", "north", "south", "west"]  # folder names, sorted: class k is DIRECTIONS[k]


def motion_clips(per_class: int, frames: int = 16, size: int = 32, seed: int = 0) -> list[list[np.ndarray]]:
    """uint8 (T, H, W, 3) clips of a square moving in one of 4 directions, ``per_class`` each."""
    x, y = synthetic_motion((3, frames, size, size), per_class * 12, classes=4, noise=0.05, seed=seed)
    # synthetic-motion's class k moves at angle 2*pi*k/4: east, south (rows grow), west, north
    order = {0: "east", 1: "south", 2: "west", 3: "north"}
    out: list[list[np.ndarray]] = [[] for _ in DIRECTIONS]
    for clip, label in zip(x, y.tolist()):
        k = DIRECTIONS.index(order[label])
        if len(out[k]) < per_class:
            pixels = (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
            out[k].append(np.ascontiguousarray(pixels))  # (T, H, W, 3)
    assert all(len(c) == per_class for c in out)
    return out


def encode(path: Path, frames: np.ndarray, codec: str, fps: int = 16, gop: int = 4) -> None:
    """Write uint8 (T, H, W, 3) frames as a video file (keyframe every ``gop`` frames)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"crf": "10"}
        else:  # mpeg4, libvpx: a high bit rate keeps flat frames within 1 of their value
            stream.bit_rate = 8_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _broken(folder: Path, ext: str) -> None:
    (folder / f"corrupt{ext}").write_bytes(b"this is not a media file\x00\x01\x02" * 40)
    (folder / f"empty{ext}").write_bytes(b"")


def write_videos(root: Path, per_class: int = 20, frames: int = 16, size: int = 32) -> Path:
    """root/<direction>/<n>.mp4|.avi, plus a corrupt .mp4 and a zero-length .avi."""
    for k, clips in enumerate(motion_clips(per_class, frames, size)):
        folder = root / DIRECTIONS[k]
        folder.mkdir(parents=True, exist_ok=True)
        for n, clip in enumerate(clips):
            if n % 2:
                encode(folder / f"v{n:03d}.avi", clip, "mpeg4")
            else:
                encode(folder / f"v{n:03d}.mp4", clip, "libx264")
    (root / DIRECTIONS[0] / "corrupt.mp4").write_bytes(b"not a video\x00" * 100)
    (root / DIRECTIONS[0] / "empty.avi").write_bytes(b"")
    return root


def write_frames(root: Path, per_class: int = 20, frames: int = 16, size: int = 32) -> Path:
    """root/<direction>/<video>/<frame>.jpg, plus a zero-length frame and a corrupt-only video."""
    from PIL import Image

    for k, clips in enumerate(motion_clips(per_class, frames, size)):
        for n, clip in enumerate(clips):
            folder = root / DIRECTIONS[k] / f"video{n:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(clip):
                Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=95)
    broken = root / DIRECTIONS[0] / "broken"
    broken.mkdir()
    _broken(broken, ".jpg")
    return root


SHAPES = ["disc", "square", "triangle"]


def write_shapes(root: Path, per_class: int = 30, size: int = 32, seed: int = 0) -> Path:
    """root/<shape>/<n>.png: a bright shape at a random place and size on a dark noisy background."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            noise = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
            image = Image.fromarray(noise)
            draw = ImageDraw.Draw(image)
            r = int(rng.integers(size // 5, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            box = [cx - r, cy - r, cx + r, cy + r]
            if shape == "disc":
                draw.ellipse(box, fill=(230, 230, 230))
            elif shape == "square":
                draw.rectangle(box, fill=(230, 230, 230))
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=(230, 230, 230))
            image.save(folder / f"{n:03d}.png")
    _broken(root / SHAPES[0], ".png")
    return root
