"""Does the `video-folder` source keep up? Clips/s against a hand-written PyAV Dataset, and data time
per step against a C3D-sized training step. Side by side in one run (absolute times drift).

    python bench/data_speed.py [--videos 32] [--frames 96] [--size 240x320] [--workers 2]
                               [--batch 8] [--repeats 3] [--model small|full] [--device cpu]

Writes ``--videos`` H.264 videos (``--frames`` frames of ``--size``, a keyframe every 12 frames, 25
fps, 2 classes) to a temporary folder, then, alternating repetitions so machine noise hits both:

  1. torchspec: `load_data` + `make_loader` on a spec with `source: video-folder` (16-frame clips,
     frame_stride 2, the default transform: resize the short side to 112, centre-crop 112x112,
     scale to [0, 1]), the given workers and batch;
  2. hand-written: a straightforward Dataset a user would write with PyAV: open the file, decode
     frames from the start until the last one needed, keep the clip's frames, then the same
     torchvision v2 Resize + CenterCrop + scaling; the same DataLoader settings.

Both draw a uniformly random start per clip. Prints clips/s
of each and the ratio torchspec / hand-written (goal >= 1.0); then the median time of a training
step (forward, backward, SGD step) of a C3D-like model on the same batch shape, and data time per
step / step time (below 1: the loader keeps up when it runs in parallel with the step). `--model
full` is the zoo's C3D (79 M parameters, 38.5 GMACs per clip: minutes per step on a 2-core CPU);
the default `small` has C3D's layout with a quarter of the channels and a 487-way head.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torchspec  # noqa: E402
from torchspec.training.data import load_data, make_loader  # noqa: E402
from torchspec.training.resolve import resolve_spec  # noqa: E402
from torchspec.training.video import clip_indices  # noqa: E402

FRAMES, STRIDE, CROP = 16, 2, 112


def write_videos(folder: str, count: int, frames: int, height: int, width: int) -> None:
    import av

    rng = np.random.default_rng(0)
    for n in range(count):
        os.makedirs(os.path.join(folder, f"class{n % 2}"), exist_ok=True)
        with av.open(os.path.join(folder, f"class{n % 2}", f"v{n:03d}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
            stream.codec_context.gop_size = 12
            base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
            for t in range(frames):  # a textured background drifting right: real motion, real bits
                image = np.repeat(np.repeat(np.roll(base, t, axis=1), 8, 0), 8, 1)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


class HandWritten(Dataset[tuple[torch.Tensor, int]]):
    """What a user writes without torchspec: decode from the start, keep the clip's frames."""

    def __init__(self, root: str, seed: int) -> None:
        from torchvision.transforms import v2

        self.files = [
            (os.path.join(root, c, f), i)
            for i, c in enumerate(sorted(os.listdir(root)))
            for f in sorted(os.listdir(os.path.join(root, c)))
        ]
        self.seed = seed
        to_float = v2.ToDtype(torch.float32, scale=True)
        self.transform = v2.Compose([v2.Resize(CROP), v2.CenterCrop(CROP), to_float])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import av

        path, label = self.files[index]
        with av.open(path) as container:
            stream = container.streams.video[0]
            n = stream.frames
            room = max(n - ((FRAMES - 1) * STRIDE + 1), 0)
            start = int(np.random.default_rng([self.seed, index]).integers(0, room + 1))
            wanted = clip_indices(n, FRAMES, STRIDE, start)
            frames = []
            for i, frame in enumerate(container.decode(stream)):
                frames.append(frame.to_ndarray(format="rgb24"))
                if i >= wanted[-1]:
                    break
        clip = torch.from_numpy(np.stack([frames[i] for i in wanted])).permute(0, 3, 1, 2)
        return self.transform(clip).permute(1, 0, 2, 3), label


def _spec(root: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "data_speed",
        "input": [3, FRAMES, CROP, CROP],
        "layers": [{"type": "Flatten"}, {"type": "Linear", "out_features": 2}],
        "train": {
            "data": {"source": "video-folder", "root": root, "frame_stride": STRIDE, "val_fraction": 0},
            "batch_size": args.batch,
            "num_workers": args.workers,
            "device": "cpu",
        },
    }


def _epoch(loader: Any) -> float:
    """Clips/s over one pass (worker start-up included, as in an epoch of training)."""
    started, clips = time.perf_counter(), 0
    for x, _ in loader:
        clips += x.shape[0]
    return clips / (time.perf_counter() - started)


def _model(kind: str) -> torch.nn.Module:
    spec = torchspec.load_spec(os.path.join(ROOT, "specs", "c3d.yaml"))
    if kind == "full":
        return torchspec.build(spec, seed=0)
    data = copy.deepcopy(spec.to_data())
    for layer in data["layers"]:
        if isinstance(layer, dict) and layer.get("type") == "Conv3d":
            layer["out_channels"] //= 4
        if isinstance(layer, dict) and layer.get("name") in ("fc6", "fc7"):
            layer["out_features"] //= 4
    return torchspec.build(data, seed=0)


def _step_time(model: torch.nn.Module, batch: int, device: str, steps: int = 3) -> float:
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(batch, 3, FRAMES, CROP, CROP, device=device)
    y = torch.randint(0, 487, (batch,), device=device)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", default="240x320", help="HxW of the videos (UCF-101: 240x320)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=("small", "full"), default="small")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "videos")
        write_videos(root, args.videos, args.frames, height, width)
        spec, config = resolve_spec(_spec(root, args))
        data = load_data(config, spec.input, [2], file="<bench>", say=lambda _: None)
        ours, _ = make_loader(data.train, config, train=True, pin_memory=False)
        hand = DataLoader(HandWritten(root, 0), batch_size=args.batch, shuffle=True, num_workers=args.workers)
        rates: dict[str, list[float]] = {"torchspec": [], "hand": []}
        for _ in range(args.repeats):  # alternate: machine noise hits both alike
            rates["torchspec"].append(_epoch(ours))
            rates["hand"].append(_epoch(hand))
    print(f"{args.videos} videos of {args.frames} frames {height}x{width} (H.264, keyframe every 12), "
          f"clips of {FRAMES} frames every {STRIDE}, resized + centre-cropped to {CROP}x{CROP}, "
          f"batch {args.batch}, {args.workers} workers, {torch.get_num_threads()} torch threads")  # fmt: skip
    ratios = [a / b for a, b in zip(rates["torchspec"], rates["hand"])]
    for name in rates:
        print(f"  {name:10s} clips/s: " + ", ".join(f"{r:.1f}" for r in rates[name]))
    print(f"  video-folder / hand-written clips/s: median {statistics.median(ratios):.2f} (goal >= 1.0)")
    clips_per_s = statistics.median(rates["torchspec"])
    step = _step_time(_model(args.model), args.batch, args.device)
    data_per_step = args.batch / clips_per_s
    what = "C3D (specs/c3d.yaml)" if args.model == "full" else "C3D-like, a quarter of the channels"
    print(f"  training step of {what}, batch {args.batch}, {args.device}: {step:.3f} s")
    print(f"  data time per step {data_per_step:.3f} s / step time {step:.3f} s = {data_per_step / step:.2f}"
          " (below 1: the loader keeps up)")  # fmt: skip


if __name__ == "__main__":
    main()
