"""Training pictures and TensorBoard: curves.png in a run folder, `torchspec plot` comparing runs,
`eval --confusion`, and `train.log: [csv, tensorboard]` (event files, a missing extra, resume).

Pictures are checked as files (a PNG that PIL opens, of plausible size, not blank) and by their
words (the figure's texts, or an SVG's, which keeps its text as text)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ARTEFACT_SPEC, TINY_CNN, cli, process, write_spec
from PIL import Image
from safetensors.torch import load_file

import torchspec
from torchspec.training import records
from torchspec.training.curves import curves_figure, read_metrics
from torchspec.training.pictures import TEXT_CELLS_MAX, confusion_figure

pytestmark = pytest.mark.usefixtures("one_thread")

TB = "\n  log: [csv, tensorboard]\n  scheduler: {type: StepLR, step_size: 1, gamma: 0.5}\n"


def _texts(figure: object) -> set[str]:
    from matplotlib.text import Text

    return {t.get_text() for t in figure.findobj(Text) if t.get_text()}  # type: ignore[attr-defined]


def _check_png(path: Path, min_size: tuple[int, int] = (400, 250)) -> tuple[int, int]:
    """A PNG that PIL reads whole, at least ``min_size`` pixels, with drawn (non-white) content."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = gray.shape
    assert width >= min_size[0] and height >= min_size[1], (width, height)
    inked = float((gray < 200).mean())  # lines, text, cells
    assert 0.01 < inked < 0.7, inked
    return width, height


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """run_a: 2 epochs with TensorBoard and a StepLR; run_b: 1 epoch, another lr, csv only."""
    root = tmp_path_factory.mktemp("plots")
    torchspec.train(write_spec(root, TINY_CNN, "a", "run_a", TB), quiet=True)
    spec_b = write_spec(root, TINY_CNN.replace("lr: 0.1", "lr: 0.02"), "b", "run_b")
    torchspec.train(spec_b, ["train.epochs=1"], quiet=True)
    return root


def test_train_draws_curves_png(runs: Path) -> None:
    width, height = _check_png(runs / "run_a" / "curves.png", (900, 300))
    assert width > 2 * height  # three panels side by side
    rows = read_metrics(str(runs / "run_a"))
    texts = _texts(curves_figure([("run_a", rows)]))
    assert {"train loss", "val loss", "train accuracy", "val accuracy", "learning rate", "epoch"} <= texts
    assert {"loss", "accuracy (%)", "run_a"} <= texts


def test_regression_curves_show_mae_and_rmse() -> None:
    rows = [
        {"epoch": e, "lr": 0.1, "train_loss": 1 / e, "val_loss": 2 / e, "val_mae": 1 / e, "val_rmse": 2 / e}
        for e in (1, 2, 3)
    ]
    texts = _texts(curves_figure([("reg", rows)]))
    assert {"val MAE", "val RMSE", "error"} <= texts and "accuracy (%)" not in texts


def test_plot_compares_runs(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.png"
    done = process("plot", str(runs / "run_a"), str(runs / "run_b"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out} (2 runs)" in done.stdout
    _check_png(out, (900, 300))
    svg = tmp_path / "compare.svg"
    result = cli("plot", str(runs / "run_a"), str(runs / "run_b"), "-o", str(svg), "--title", "lr sweep")
    assert result.returncode == 0, result.stderr
    text = svg.read_text()
    for word in ("run_a", "run_b", "lr sweep", "train", "val", "learning rate", "accuracy (%)"):
        assert f">{word}<" in text, word


def test_plot_default_output_is_compare_png_here(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("plot", str(runs / "run_b"))
    assert result.returncode == 0, result.stderr
    _check_png(tmp_path / "compare.png")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


BAD_LOGS = {
    "no metrics.csv": (None, "has no metrics.csv"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not UTF-8 text"),
    "no epoch column": (b"step,loss\n1,0.5\n", "has no header with an epoch column"),
    "not a number": (b"epoch,train_loss\n1,0.5\n2,abc\n", "line 3: train_loss is 'abc', not a number"),
    "ragged": (b"epoch,train_loss\n1,0.5,7\n", "line 2 has 3 cells, the header 2"),
    "no epochs": (b"epoch,train_loss\n", "holds no epochs yet"),
    "bad epoch": (b"epoch,train_loss\n-1,0.5\n", "line 2: epoch '-1'"),
    "fifo": (_fifo, "is not a regular file"),
}


@pytest.mark.parametrize("case", BAD_LOGS)
def test_plot_refuses_a_malformed_run_folder(case: str, runs: Path, tmp_path: Path) -> None:
    content, expected = BAD_LOGS[case]
    folder = tmp_path / "stranger"
    folder.mkdir()
    if callable(content):
        content(folder / "metrics.csv")
    elif content is not None:
        (folder / "metrics.csv").write_bytes(content)
    out = tmp_path / "out.png"
    result = cli("plot", str(runs / "run_a"), str(folder), "-o", str(out))
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(str(folder)) and expected in first, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_plot_refuses_a_missing_folder_and_a_bad_extension(runs: Path, tmp_path: Path) -> None:
    missing = cli("plot", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.png"))
    assert missing.returncode == 1 and "nowhere does not exist: expected a run folder" in missing.stderr
    wrong = cli("plot", str(runs / "run_a"), "-o", str(tmp_path / "x.jpg"))
    assert wrong.returncode == 1 and "use a .png, .svg or .pdf file name" in wrong.stderr


def test_eval_draws_the_confusion_matrix(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "confusion.png"
    spec, weights = runs / "a.yaml", runs / "run_a" / "model.safetensors"
    result = cli("eval", str(spec), "--checkpoint", str(weights), "--confusion", str(out), "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)  # stdout stays pure JSON
    _check_png(out, (300, 300))
    figure = confusion_figure(found["confusion"], title="val")
    texts = _texts(figure)
    assert {"predicted class", "true class", "val"} <= texts
    cells = [str(n) for row in found["confusion"] for n in row]
    assert sum(1 for t in figure.findobj() if getattr(t, "get_text", None) and t.get_text() in cells) >= 25
    wrong = cli("eval", str(spec), "--checkpoint", str(weights), "--confusion", str(tmp_path / "c.bmp"))
    assert wrong.returncode == 1 and "use a .png, .svg or .pdf file name" in wrong.stderr


def test_confusion_of_a_regression_model_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "reg.yaml"
    spec.write_text(
        "name: reg\ninput: [4]\nlayers: [{type: Linear, out_features: 2}]\n"
        "train: {data: {source: random, samples: 16, task: regression}, loss: MSELoss, epochs: 1,\n"
        f"        batch_size: 8, output_dir: {tmp_path / 'run'}}}\n"
    )
    torchspec.train(spec, quiet=True)
    out = tmp_path / "c.png"
    result = cli(
        "eval", str(spec), "--checkpoint", str(tmp_path / "run" / "last.ckpt"), "--confusion", str(out)
    )
    assert result.returncode == 1 and "not a classifier" in result.stderr and not out.exists()
    _check_png(tmp_path / "run" / "curves.png")  # loss, MAE/RMSE and lr


def test_confusion_names_and_many_classes() -> None:
    named = _texts(confusion_figure([[3, 1], [0, 4]], ["cat", "dog"]))
    assert {"cat", "dog", "3", "1", "0", "4"} <= named
    big = TEXT_CELLS_MAX + 10
    matrix = (np.eye(big, dtype=int) * 5 + 1).tolist()
    texts = _texts(confusion_figure(matrix))
    assert "6" not in texts and len(texts) < 40  # no per-cell numbers: ticks, labels and title only


def test_eval_names_the_classes_of_a_folder_source(tmp_path: Path) -> None:
    from media import SHAPES, write_shapes

    root = write_shapes(tmp_path / "shapes", per_class=4, size=12)
    spec = tmp_path / "shapes.yaml"
    spec.write_text(
        "name: shapes\ninput: [1, 12, 12]\nlayers: [Flatten, {type: Linear, out_features: 3}]\n"
        f"train: {{data: {{source: image-folder, root: {root}, val_fraction: 0.5}}, epochs: 1,\n"
        f"        batch_size: 8, output_dir: {tmp_path / 'run'}}}\n"
    )
    torchspec.train(spec, quiet=True)
    out = tmp_path / "c.svg"
    result = cli("eval", str(spec), "--checkpoint", str(tmp_path / "run" / "model.safetensors"),
                 "--confusion", str(out), "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["class_names"] == SHAPES
    assert all(f">{name}<" in out.read_text() for name in SHAPES)


def _events(folder: Path) -> object:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    return events


def test_tensorboard_writes_scalars_graph_and_hparams(runs: Path) -> None:
    events = _events(runs / "run_a")
    tags = set(events.Tags()["scalars"])  # type: ignore[attr-defined]
    assert {"step/loss", "step/lr", "epoch/lr", "epoch/train_loss", "epoch/val_loss"} <= tags
    assert {"epoch/val_accuracy", "epoch/val_macro_f1"} <= tags
    assert [e.step for e in events.Scalars("step/loss")] == [1, 2, 3, 4, 5, 6]  # type: ignore[attr-defined]
    val = events.Scalars("epoch/val_loss")  # type: ignore[attr-defined]
    rows = read_metrics(str(runs / "run_a"))
    assert [e.step for e in val] == [3, 6]  # each epoch at its last step, as metrics.csv's rows
    assert [round(e.value, 4) for e in val] == [round(r["val_loss"], 4) for r in rows]  # type: ignore[arg-type]
    assert [e.value for e in events.Scalars("step/lr")] == pytest.approx([0.1] * 3 + [0.05] * 3)  # type: ignore[attr-defined]
    assert events.Tags()["graph"]  # type: ignore[attr-defined]
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # type: ignore[attr-defined]
    assert not (runs / "run_b" / "tensorboard").exists()  # csv only


def test_resume_keeps_the_earlier_epochs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_spec(tmp_path, TINY_CNN, extra=TB)
    torchspec.train(spec, quiet=True)
    drawn: list[list[int]] = []
    real = records.write_curves

    def spy(run_dir: str, history: list[dict[str, object]], name: str | None = None) -> str:
        drawn.append([int(row["epoch"]) for row in history])  # type: ignore[call-overload]
        return real(run_dir, history, name)

    monkeypatch.setattr(records, "write_curves", spy)
    torchspec.train(spec, ["train.epochs=3"], resume="auto", quiet=True)
    assert drawn == [[1, 2, 3]]  # the resumed epoch drawn with the two before it
    _check_png(tmp_path / "run" / "curves.png")
    assert len(os.listdir(tmp_path / "run" / "tensorboard")) == 2  # a new event file, same folder
    val = _events(tmp_path / "run").Scalars("epoch/val_loss")  # type: ignore[attr-defined]
    assert [e.step for e in val] == [3, 6, 9]


def test_overwrite_removes_the_previous_runs_event_files(tmp_path: Path) -> None:
    """--overwrite starts a new run: the old run's TensorBoard events must not be drawn with it."""
    spec = write_spec(tmp_path, TINY_CNN, extra=TB)
    torchspec.train(spec, ["train.epochs=1"], quiet=True)
    folder = tmp_path / "run" / "tensorboard"
    (old,) = os.listdir(folder)
    (folder / "notes.txt").write_text("mine")  # not ours: kept
    torchspec.train(spec, ["train.epochs=1"], overwrite=True, quiet=True)
    files = sorted(os.listdir(folder))
    assert "notes.txt" in files and old not in files
    assert len([f for f in files if f.startswith("events.out.tfevents.")]) == 1
    assert [e.step for e in _events(tmp_path / "run").Scalars("epoch/val_loss")] == [3]  # type: ignore[attr-defined]


def test_fast_epochs_are_drawn_less_often_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[int] = []
    real = records.write_curves

    def slow(run_dir: str, history: list[dict[str, object]], name: str | None = None) -> str:
        drawn.append(len(history))
        time.sleep(0.2)  # a drawing far longer than these epochs
        return real(run_dir, history, name)

    monkeypatch.setattr(records, "write_curves", slow)
    torchspec.train(write_spec(tmp_path, TINY_CNN), ["train.epochs=6"], quiet=True)
    assert drawn[0] == 1 and drawn[-1] == 6 and len(drawn) < 6  # the first, the last, not each
    _check_png(tmp_path / "run" / "curves.png")


def test_tensorboard_leaves_the_training_unchanged(tmp_path: Path) -> None:
    """BatchNorm and Dropout: tracing the graph must not update statistics nor draw random numbers."""
    weights = []
    for name, extra in (("plain", ""), ("tb", "  log: [csv, tensorboard]\n")):
        torchspec.train(write_spec(tmp_path, ARTEFACT_SPEC, name, name, extra), quiet=True)
        weights.append(load_file(tmp_path / name / "model.safetensors"))
    assert (tmp_path / "tb" / "tensorboard").is_dir()
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_symlinked_tensorboard_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tensorboard").symlink_to(elsewhere)
    result = cli("train", str(write_spec(tmp_path, TINY_CNN, extra=TB)))
    assert result.returncode == 1
    assert "tensorboard is a symlink; train.log: tensorboard writes its event files" in result.stderr
    assert "Traceback" not in result.stderr and os.listdir(elsewhere) == []


def test_plot_draws_a_strangers_infinities_as_gaps(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,val_loss,lr\n1,inf,nan,0.1\n2,0.5,0.7,0.1\n")
    result = cli("plot", str(tmp_path), "-o", str(tmp_path / "x.png"))
    assert result.returncode == 0, result.stderr
    _check_png(tmp_path / "x.png")


def test_missing_tensorboard_is_an_error_at_train_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path, TINY_CNN, extra="  log: [csv, tensorboard]\n")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the extra were not installed
    for command in ("check", "train"):
        result = cli(command, str(spec))
        assert result.returncode == 1, result.stdout
        line = len(TINY_CNN.splitlines()) + 1
        first = result.stderr.splitlines()[0]
        assert first == (
            f"{spec}:{line}:14: error: train.log: tensorboard needs the tensorboard extra: "
            'pip install "torchspec[tensorboard]"'
        ), result.stderr
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
