"""Reading clips from video files with PyAV: probe a file's header, then decode only the frames asked for.

PyAV (``pip install av``) ships its own FFmpeg in the wheel, so installing stays pip-only;
torchcodec, PyTorch's decoder, needs the system's FFmpeg libraries. Frame ``i`` is the frame whose
presentation time is ``start + i / fps``. To read frames ``[a .. b]`` the reader seeks to the
nearest keyframe at or before ``a``, decodes forward, converts only the wanted frames to RGB and
stops after ``b``: a clip costs the frames from that keyframe to ``b``, not the whole video.

Files may come from strangers: the header's frame count and frame size are bounded, and the frames
decoded for one clip are capped (:data:`MAX_DECODED`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["MAX_DECODED", "MAX_VIDEO_FRAMES", "VideoInfo", "clip_indices", "probe", "read_frames"]

MAX_VIDEO_FRAMES = 10_000_000  # a larger frame count in a header is refused (about 4 days at 30 fps)
MAX_DECODED = 20_000  # frames decoded for one clip at most (keyframe to last wanted frame)


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # frames in the video (from the header, else from the duration, else counted)
    fps: float  # average frame rate


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise ImportError(
            "video-folder needs PyAV: pip install 'torchspec[video]' (or pip install av)"
        ) from None
    return av


def probe(path: str, max_pixels: int) -> VideoInfo:
    """The frame count and rate of ``path``'s first video stream; ValueError if unusable."""
    av = _av()
    try:
        with av.open(path, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ValueError("it has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width <= 0 or height <= 0:
                raise ValueError("its video stream has no frame size")
            if width * height > max_pixels:
                raise ValueError(f"frames of {width}x{height} exceed max_pixels {max_pixels}")
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate or rate <= 0:
                raise ValueError("its video stream has no frame rate")
            frames = int(stream.frames or 0)
            if frames <= 0:  # some containers (mkv, webm) do not store it
                seconds = _seconds(stream, container)
                frames = round(seconds * float(rate)) if seconds else _count_packets(container, stream)
            if frames <= 0:
                raise ValueError("it has no frames")
            if frames > MAX_VIDEO_FRAMES:
                raise ValueError(f"its header claims {frames} frames (the limit is {MAX_VIDEO_FRAMES})")
            return VideoInfo(frames, float(rate))
    except av.error.FFmpegError as exc:
        raise ValueError(_reason(exc)) from None


def _seconds(stream: Any, container: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    return 0.0


def _count_packets(container: Any, stream: Any) -> int:
    count = 0
    for packet in container.demux(stream):  # demuxing only: no decoding
        if packet.size:
            count += 1
            if count > MAX_VIDEO_FRAMES:
                break
    return count


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(": '", 1)[0]  # FFmpeg's message without the repeated file name


def clip_indices(n_frames: int, frames: int, stride: float, start: float) -> list[int]:
    """Frame indices of a clip of ``frames`` frames every ``stride`` frames from ``start``.

    A video shorter than the clip repeats its last frame.
    """
    return [min(round(start + k * stride), n_frames - 1) for k in range(frames)]


def read_frames(path: str, indices: Sequence[int], fps: float) -> np.ndarray:
    """Frames ``indices`` (ascending, repeats allowed) of ``path`` as uint8 (T, H, W, 3) RGB.

    Raises ValueError when the file cannot be decoded or holds none of the frames.
    """
    av = _av()
    wanted = sorted(set(indices))
    got: dict[int, np.ndarray] | None = None
    # First with a seek; if the file cannot seek, or the seek landed after the first wanted frame,
    # or the frames carry no timestamps: again, decoding from the start and counting frames.
    for seek in (True, False) if wanted[0] > 0 else (False,):
        try:
            with av.open(path, metadata_errors="ignore") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                got = _decode(container, stream, wanted, fps, seek=seek)
        except av.error.FFmpegError as exc:
            if not seek:
                raise ValueError(f"cannot decode: {_reason(exc)}") from None
        if got is not None:
            break
    if not got:
        raise ValueError(f"no frames decoded (wanted frames {wanted[0]}..{wanted[-1]})")
    # A video that ends early (a truncated file, a header's count off by a few): a missing frame is
    # replaced by the nearest decoded one before it (or the first decoded one).
    have = sorted(got)
    return np.stack([got[max([k for k in have if k <= i], default=have[0])] for i in indices])


def _decode(
    container: Any, stream: Any, wanted: list[int], fps: float, seek: bool
) -> dict[int, np.ndarray] | None:
    """{index: RGB frame} for the wanted frames; None if decoding began after the first of them."""
    base = stream.start_time if stream.start_time is not None else 0
    time_base = stream.time_base or Fraction(1, 1)
    if seek:  # the keyframe at or before the first wanted frame (FFmpeg seeks backward)
        container.seek(base + math.floor(wanted[0] / fps / time_base), stream=stream)
    first, last = wanted[0], wanted[-1]
    want = set(wanted)
    got: dict[int, np.ndarray] = {}
    for counted, frame in enumerate(container.decode(stream)):  # counted: frames decoded before it
        if frame.pts is None:
            if seek:  # no timestamps: only counting from the start tells the index
                return None
            index = counted
        else:
            index = round(float((frame.pts - base) * time_base) * fps)
        if seek and counted == 0 and index > first:
            return None
        if counted >= MAX_DECODED:
            raise ValueError(f"more than {MAX_DECODED} frames decoded for one clip")
        if index in want:
            got[index] = frame.to_ndarray(format="rgb24")
        if index >= last:
            break
    return got
