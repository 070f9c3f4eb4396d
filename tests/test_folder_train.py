"""`torchspec train` end to end on real files: a folder of encoded videos (mp4 and avi) and one of
JPEG frames, both of synthetic-motion's moving squares, reach >= 90% validation accuracy; an image
folder of synthetic shapes trains; a run on videos with workers resumes exactly after kill -9; and
`eval` and `predict` (on a video file) apply the eval transform."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from media import write_frames, write_shapes, write_videos
from safetensors.torch import load_file

from torchspec.training.checkpoint import load_checkpoint

MOTION = """\
name: folder_motion
input: [3, 8, 16, 16]              # 8 frames of the 32x32 videos, resized
layers:
  - {type: Conv3d, out_channels: 8, kernel_size: 3, padding: 1}
  - BatchNorm3d
  - ReLU
  - {type: MaxPool3d, kernel_size: [1, 2, 2]}
  - {type: Conv3d, out_channels: 16, kernel_size: 3, padding: 1}
  - BatchNorm3d
  - ReLU
  - {type: MaxPool3d, kernel_size: 2}
  - {type: Conv3d, out_channels: 32, kernel_size: 3, padding: 1}
  - BatchNorm3d
  - ReLU
  - {type: AdaptiveAvgPool3d, output_size: 1}
  - Flatten
  - {type: Linear, out_features: 4}
train:
  data: {source: SOURCE, root: ROOT, clips_per_video: 2}
  batch_size: 8
  num_workers: 2
  persistent_workers: true
  epochs: 6
  optimizer: {type: AdamW, lr: 0.004}
  scheduler: {type: CosineAnnealingLR, T_max: 6}
  device: cpu
  output_dir: OUT
"""

SHAPES = """\
name: folder_shapes
input: [1, 24, 24]                 # grayscale: the RGB PNGs get Grayscale first
layers:
  - {type: Conv2d, out_channels: 16, kernel_size: 3, padding: 1}
  - BatchNorm2d
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - {type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1}
  - BatchNorm2d
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - {type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1}
  - ReLU
  - {type: AdaptiveMaxPool2d, output_size: 1}
  - Flatten
  - {type: Linear, out_features: 3}
train:
  data:
    source: image-folder
    root: ROOT
    transform: [{type: Resize, size: 24}, RandomHorizontalFlip]
    eval_transform: [{type: Resize, size: [24, 24]}]
  batch_size: 16
  num_workers: 2
  persistent_workers: true
  epochs: 6
  optimizer: {type: AdamW, lr: 0.004}
  scheduler: {type: CosineAnnealingLR, T_max: 6}
  device: cpu
  output_dir: OUT
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    write_videos(root / "videos", per_class=20)
    write_frames(root / "frames", per_class=20)
    write_shapes(root / "shapes", per_class=60)
    return root


def _spec(tmp_path: Path, text: str, root: Path, source: str = "", name: str = "spec") -> Path:
    path = tmp_path / f"{name}.yaml"
    out = tmp_path / f"{name}_run"
    path.write_text(text.replace("SOURCE", source).replace("ROOT", str(root)).replace("OUT", str(out)))
    return path


def _train(spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torchspec", "train", str(spec), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)


def _last_val_accuracy(run: Path) -> float:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return float(rows[-1]["val_accuracy"])


@pytest.mark.parametrize(("source", "folder"), [("video-folder", "videos"), ("frame-folder", "frames")])
def test_train_on_a_folder_of_moving_squares_reaches_90_percent(
    tmp_path: Path, media: Path, source: str, folder: str
) -> None:
    spec = _spec(tmp_path, MOTION, media / folder, source)
    result = _train(spec)
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "skipping" in said and "corrupt" in said  # the broken files were named, and training went on
    # 80 readable videos, 2 clips each (frame folders: and the folder whose only frame is corrupt)
    split = {"video-folder": "128 train / 32 val", "frame-folder": "130 train / 32 val"}[source]
    assert f"data: {source}: {split} samples" in said
    assert _last_val_accuracy(tmp_path / "spec_run") >= 0.9, said[-3000:]


def test_train_on_an_image_folder_of_shapes(tmp_path: Path, media: Path) -> None:
    spec = _spec(tmp_path, SHAPES, media / "shapes")
    result = _train(spec)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "empty.png: zero-length file" in result.stdout + result.stderr
    assert _last_val_accuracy(tmp_path / "spec_run") >= 0.9  # 3 classes: chance is 33%


def test_eval_and_predict_apply_the_eval_transform(tmp_path: Path, media: Path) -> None:
    spec = _spec(tmp_path, MOTION.replace("epochs: 6", "epochs: 1"), media / "videos", "video-folder")
    assert _train(spec).returncode == 0
    run = tmp_path / "spec_run"
    evaluated = subprocess.run(
        [sys.executable, "-m", "torchspec", "eval", str(spec), "--checkpoint", str(run / "last.ckpt"),
         "--format", "json"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert metrics["split"] == "val" and metrics["accuracy"] == pytest.approx(float(rows[-1]["val_accuracy"]))
    video = next((media / "videos" / "north").glob("*.mp4"))
    predicted = subprocess.run(
        [sys.executable, "-m", "torchspec", "predict", str(run / "model.safetensors"), str(video),
         "--format", "json"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert len(rows) == 1 and len(rows[0]["top"]) == 3
    # the same clip through the library: predict's input is the eval view's centred clip
    from torchspec.training.media_input import load_media
    from torchspec.training.parts import load_weights

    x = load_media(str(video), load_weights(str(run / "model.safetensors"))[0])
    assert x.shape == (1, 3, 8, 16, 16) and x.dtype == torch.float32


RESUME = (
    MOTION.replace("epochs: 6", "epochs: 2").replace(
        "clips_per_video: 2}",
        "clips_per_video: 2, transform: [{type: RandomResizedCrop, size: 16, scale: [0.5, 1.0]}, "
        "{type: ColorJitter, brightness: 0.3}]}",
    )
    + "  checkpoint_every: 3\n  seed: 5\n"
)
RESUME = RESUME.replace("  - Flatten\n", "  - Flatten\n  - {type: Dropout, p: 0.3}\n")


def test_kill_9_mid_epoch_with_video_and_workers_resumes_exactly(tmp_path: Path, media: Path) -> None:
    reference = _spec(tmp_path, RESUME, media / "videos", "video-folder", name="reference")
    assert _train(reference).returncode == 0
    killed = _spec(tmp_path, RESUME, media / "videos", "video-folder", name="killed")
    last = tmp_path / "killed_run" / "last.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchspec", "train", str(killed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not last.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(str(last))
    assert (state["epoch"], state["step"]) < (2, 2 * 16)  # killed before the end
    resumed = _train(killed, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    a, b = (
        load_file(str(tmp_path / "reference_run" / "model.safetensors")),
        load_file(str(tmp_path / "killed_run" / "model.safetensors")),
    )
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
