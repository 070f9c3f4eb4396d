"""``torchspec draw``: the pictures are valid SVG/PNG files of plausible size holding the expected
texts (every layer, every shape on its link, the frames and collapsed containers ``--depth`` asks
for), laid out without overlaps, and drawn without importing torch.

Expected values come from the architectures themselves (ResNet-50's 16 residual blocks and its
layer1.0 parameter count, C3D's 8192 flattened features), not from the drawing code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from torchspec.draw import build_diagram, draw, lay_out, picture_format
from torchspec.draw.geometry import Layout
from torchspec.infer import infer_shapes
from torchspec.layers import fmt_shape

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
README_PICTURE = ROOT / "docs" / "images" / "unet2d.svg"
README_COMMAND = ["draw", "specs/unet2d.yaml", "-o", "docs/images/unet2d.svg"]
LOCATED = re.compile(r"^.+?:\d+:\d+: error: ", re.MULTILINE)


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchspec", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"},
    )


def svg_texts(path: Path) -> list[str]:
    """Every ``<text>`` of an SVG (it must parse as XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def assert_clean(layout: Layout) -> None:
    """No two boxes overlap; a frame overlaps only the boxes it holds; frames nest or keep apart."""
    boxes = layout.boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.rect.overlaps(b.rect), (a.box.id, b.box.id)
        for frame, rect in layout.frames:
            if frame.id in a.box.frames:
                assert a.rect.inside(rect), (a.box.id, frame.id)
            else:
                assert not a.rect.overlaps(rect), (a.box.id, frame.id)
    for i, (f, r) in enumerate(layout.frames):
        for g, s in layout.frames[i + 1 :]:
            nested = r.inside(s) if g.id in f.frames else s.inside(r) if f.id in g.frames else False
            assert nested or not r.overlaps(s), (f.id, g.id)
    for route in layout.routes:
        for x, y in route.points:
            assert 0 <= x <= layout.width and 0 <= y <= layout.height


# -- C3D: a plain chain -------------------------------------------------------------------------------


def test_c3d_svg_names_every_layer_and_every_shape(tmp_path: Path) -> None:
    report = infer_shapes(SPECS / "c3d.yaml")
    out = tmp_path / "c3d.svg"
    layout = draw(report, out)
    texts = svg_texts(out)
    for row in report.rows:
        assert any(t.startswith(row.type) for t in texts), row.type
        if row.layer.name:
            assert row.layer.name in texts
        assert fmt_shape(row.output) in texts  # the shape on the link out of every layer
    # C3D's own numbers: 16-frame 112x112 clips, 8192 features after pool5, 487 classes
    assert {"[N, 3, 16, 112, 112]", "[N, 512, 1, 4, 4]", "[N, 8192]", "[N, 487]"} <= set(texts)
    assert "Conv3d 64, k3, p1" in texts and "MaxPool3d k1x2x2, s1x2x2" in texts
    assert "input" in texts and "output" in texts
    assert len(layout.frames) == 0
    assert_clean(layout)
    # a chain: every link goes straight down, one under the other
    for route in layout.routes:
        assert route.points[-1][1] > route.points[0][1]
    assert list(tmp_path.iterdir()) == [out]  # written atomically: no temporary left


def test_c3d_png_is_a_plausible_picture(tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    out = tmp_path / "c3d.png"
    layout = draw(infer_shapes(SPECS / "c3d.yaml"), out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert (width, height) == pytest.approx((layout.width / 72 * 100, layout.height / 72 * 100), abs=2)
        assert 150 <= width <= 600 and height > 5 * width  # 29 layers, one under the other
        grey = image.convert("L")
        assert ImageStat.Stat(grey).stddev[0] > 20  # not blank
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50  # boxes in several colours


# -- ResNet-50: blocks, skips, merges, --depth ----------------------------------------------------


@pytest.fixture(scope="module")
def resnet_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("resnet") / "resnet50.svg"
    return cli("draw", "specs/resnet.yaml", "-o", out), out


def test_resnet50_full_depth(resnet_cli: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = resnet_cli
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: resnet" in proc.stdout
    assert "hint: " in proc.stdout and "--depth 1" in proc.stdout  # a tall picture: how to get an overview
    texts = svg_texts(out)
    report = infer_shapes(SPECS / "resnet.yaml")
    for row in report.rows:
        assert any(t.startswith(row.type) for t in texts), row.type
    assert texts.count("Add") == 16  # 3 + 4 + 6 + 3 bottleneck blocks, one residual sum each
    stages = [f"layer{i} · stage" for i in range(1, 5)]
    blocks = [f"layer{i}.{j} · bottleneck" for i, n in enumerate((3, 4, 6, 3), 1) for j in range(n)]
    assert set(stages + blocks) <= set(texts)
    assert sum(t.endswith(".downsample") for t in texts) == 4  # the projection shortcuts, framed
    shapes = {"[N, 64, 112, 112]", "[N, 256, 56, 56]", "[N, 2048, 7, 7]", "[N, 2048]", "[N, 1000]"}
    assert shapes <= set(texts)


def test_resnet50_skips_are_marked() -> None:
    diagram = build_diagram(infer_shapes(SPECS / "resnet.yaml"))
    skips = [link for link in diagram.links if link.skip]
    # one shortcut per block: from the block's input to the downsample (4) or to the Add (12)
    assert len(skips) == 16
    firsts = {f"layer{i}.0.downsample.0" for i in range(1, 5)}
    adds = {f"layer{i}.{j}.8" for i, n in enumerate((3, 4, 6, 3), 1) for j in range(1, n)}  # no downsample
    assert {s.dst for s in skips} == firsts | adds
    merges = [b for b in diagram.boxes if b.kind == "merge"]
    assert len(merges) == 16 and all(b.lines == ("Add",) for b in merges)


def test_resnet50_depth_1_collapses_the_blocks(tmp_path: Path) -> None:
    report = infer_shapes(SPECS / "resnet.yaml")
    out = tmp_path / "resnet50_d1.svg"
    layout = draw(report, out, depth=1)
    texts = svg_texts(out)
    assert {f"layer{i} · stage" for i in range(1, 5)} <= set(texts)  # stages stay frames
    names = [f"layer{i}.{j}" for i, n in enumerate((3, 4, 6, 3), 1) for j in range(n)]
    assert set(names) <= set(texts)  # each block one box
    assert "75,008 params" in texts  # layer1.0: 1x1 64, 3x3 64, 1x1 256, downsample 256, BatchNorms
    assert "Add" not in texts and texts.count("BatchNorm2d") == 1  # only the stem's bn1 is left
    assert texts.count("bottleneck (12 layers)") == 4 and texts.count("bottleneck (10 layers)") == 12
    assert len(layout.frames) == 4
    assert_clean(layout)


def test_resnet50_depth_2_and_0(tmp_path: Path) -> None:
    report = infer_shapes(SPECS / "resnet.yaml")
    two = build_diagram(report, depth=2)
    collapsed = {b.id: b.lines for b in two.boxes if b.kind == "block"}
    assert sorted(collapsed) == [f"layer{i}.0.downsample" for i in range(1, 5)]
    assert all(lines[1] == "downsample (2 layers)" for lines in collapsed.values())
    assert len(two.frames) == 4 + 16
    zero = build_diagram(report, depth=0)
    assert [b.id for b in zero.boxes if b.kind == "block"] == ["layer1", "layer2", "layer3", "layer4"]
    assert not zero.frames and zero.layer_count == 4 + 4 + 3  # stem, stages, avgpool/flatten/fc


# -- a U-Net and wired graphs ---------------------------------------------------------------------


def test_unet_skips_across_scales(tmp_path: Path) -> None:
    report = infer_shapes(SPECS / "unet2d.yaml")
    diagram = build_diagram(report)
    skips = {(link.src, link.dst, link.label) for link in diagram.links if link.skip}
    assert skips == {("enc1.5", "cat1", "[N, 16, 64, 64]"), ("enc2.5", "cat2", "[N, 32, 32, 32]")}
    out = tmp_path / "unet.svg"
    layout = draw(report, out)
    texts = svg_texts(out)
    assert {"enc1", "enc2", "bottleneck", "dec2", "dec1", "cat1", "cat2", "Concat"} <= set(texts)
    assert {"[N, 64, 32, 32]", "[N, 32, 64, 64]", "[N, 2, 64, 64]"} <= set(texts)  # the concatenations
    assert_clean(layout)
    png = tmp_path / "unet.png"
    draw(report, png)
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] > 200 and image.size[1] > 1000


def test_parallel_branches_keep_their_frames_apart() -> None:
    # GoogLeNet's inception modules: four branch containers side by side, read from `input`
    layout = lay_out(build_diagram(infer_shapes(SPECS / "googlenet.yaml"), depth=2))
    branches = [f for f, _ in layout.frames if f.id.startswith("inception3a.branch")]
    assert len(branches) == 4
    assert_clean(layout)


def test_tuple_elements_are_written_out(tmp_path: Path) -> None:
    # lstm_classifier reads h_n with `from: lstm.1.0`: [num_layers, N, hidden], batch not in front
    report = infer_shapes(SPECS / "lstm_classifier.yaml", batch=3)
    diagram = build_diagram(report)
    into_select = [link for link in diagram.links if link.dst == "last"]
    expected = [("lstm", "lstm.1.0 [2, 3, 64]", False)]  # the element read is named
    assert [(link.src, link.label, link.skip) for link in into_select] == expected
    # a container reading h_n: the links inside carry its sizes too (dimension 0 is not the batch)
    spec = {
        "name": "h",
        "input": [5, 8],
        "layers": [
            {"name": "lstm", "type": "LSTM", "hidden_size": 6, "batch_first": True},
            {"name": "s", "type": "Sequential", "from": "lstm.1.0", "layers": ["Flatten"]},
        ],
    }
    inner = build_diagram(infer_shapes(spec))
    assert [(link.src, link.dst, link.label) for link in inner.links][1] == ("lstm", "s.0", "[1, 1, 6]")
    collapsed = build_diagram(infer_shapes(spec), depth=0)
    assert [(link.src, link.dst, link.label) for link in collapsed.links][1] == (
        "lstm",
        "s",
        "lstm.1.0 [1, 1, 6]",
    )
    fixed = build_diagram(report, batch_as_n=False)
    assert any(link.label == "[3, 5]" for link in fixed.links)  # --batch 3: sizes, not N
    assert_clean(lay_out(diagram))


ZOO = sorted(p for pattern in ("*.yaml", "*.json") for p in SPECS.glob(pattern))


@pytest.mark.parametrize("spec", ZOO, ids=lambda p: p.name)
def test_every_zoo_model_lays_out_clean(spec: Path) -> None:
    report = infer_shapes(spec)
    full = build_diagram(report)
    assert {b.id for b in full.boxes if b.kind in ("layer", "merge")} == {r.path for r in report.rows}
    assert_clean(lay_out(full))
    assert_clean(lay_out(build_diagram(report, depth=1)))


def test_box_texts_fit_their_boxes() -> None:
    # measured with matplotlib's own font metrics: the layout's estimate never clips a text
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    from torchspec.draw.geometry import FONT, PAD_X

    layout = lay_out(build_diagram(infer_shapes(SPECS / "googlenet.yaml"), depth=1))
    for placed in layout.boxes:
        for i, line in enumerate(placed.box.lines):
            weight = "bold" if i == 0 and len(placed.box.lines) > 1 else "normal"
            font = FontProperties(family="DejaVu Sans", weight=weight)
            width = TextPath((0, 0), line, size=FONT, prop=font).get_extents().width
            assert width <= placed.w - PAD_X, (line, width, placed.w)


# -- the command line --------------------------------------------------------------------------------


def test_cli_png_and_options(tmp_path: Path) -> None:
    out = tmp_path / "r18.PNG"
    args = ["--variant", "resnet18", "--depth", "1", "--batch", "8"]
    proc = cli("draw", "specs/resnet.yaml", *args, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {out}: resnet, ") and "hint" not in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_spec_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    layer = "{type: Conv2d, out_channels: 4, kernel_size: 9}"  # a 9x9 kernel on 8x8 images
    spec.write_text(f"name: bad\ninput: [3, 8, 8]\nlayers:\n  - {layer}\n")
    out = tmp_path / "bad.svg"
    proc = cli("draw", spec, "-o", out)
    assert proc.returncode == 1 and LOCATED.search(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "model.pdf"], "the output must be a .svg or .png file"),
        (["-o", ".svg"], "the output must be a .svg or .png file"),
        (["-o", "x.svg", "--depth", "-1"], "expected an integer >= 0"),
        ([], "the following arguments are required: -o/--output"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    proc = cli("draw", "specs/c3d.yaml", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_cli_unwritable_output(tmp_path: Path) -> None:
    proc = cli("draw", ROOT / "specs/c3d.yaml", "-o", tmp_path / "missing" / "c3d.svg")
    assert proc.returncode == 1
    assert proc.stderr.startswith("torchspec draw: error: cannot write ") and "does not exist" in proc.stderr
    folder = tmp_path / "taken.svg"
    folder.mkdir()
    proc = cli("draw", ROOT / "specs/c3d.yaml", "-o", folder)
    assert proc.returncode == 1 and "it is a directory" in proc.stderr


def test_drawing_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from torchspec.cli import main\n"
        f"assert main(['draw', 'specs/unet2d.yaml', '-o', {str(tmp_path / 'u.png')!r}]) == 0\n"
        "assert 'matplotlib' in sys.modules and 'grandalf' in sys.modules\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "matplotlib.pyplot" not in proc.stdout


def test_picture_format() -> None:
    assert picture_format("a/b.SVG") == "svg" and picture_format("b.png") == "png"
    assert picture_format("b.pdf") is None and picture_format(".svg") is None
    assert picture_format("svg") is None


# -- the README's picture ------------------------------------------------------------------------------


def test_readme_picture_is_what_draw_draws_today(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/images/unet2d.svg" in readme and "torchspec " + " ".join(README_COMMAND) in readme
    assert README_PICTURE.stat().st_size < 300_000
    fresh = tmp_path / "unet2d.svg"
    proc = cli(*README_COMMAND[:-1], fresh)
    assert proc.returncode == 0, proc.stderr
    shown = readme.split("$ torchspec " + " ".join(README_COMMAND) + "\n", 1)[1].split("```", 1)[0]
    assert proc.stdout.replace(str(fresh), "docs/images/unet2d.svg") == shown
    assert svg_texts(README_PICTURE) == svg_texts(fresh)  # same boxes, names, shapes, in the same order
