"""What do draw, export and import cost? Ratios measured side by side in one run (absolute times drift).

    python bench/io_speed.py [--specs c3d,resnet50,unet2d] [--repeats 3] [--rounds 1]
                             [--forward-seconds 3] [--quick]

Prints the run's details, then one table (measure / result / goal):
  1. draw vs check of the same spec, in process for every spec (`torchspec.draw.draw` of the
     inferred shapes vs `load_spec` + `infer_shapes`, warm) and as whole commands for the first two
     (`torchspec draw` vs `torchspec check` vs `python -c "import torch"`, fresh interpreters,
     interleaved, wall and CPU time); whether drawing imported torch, in process and in the command
     (it must not);
  2. `torchspec.export.export` to python / onnx / exported-program vs `torchspec.build` of the
     same spec, in process (torch's default threads), interleaved, after one warm-up of every step
     on specs/unet2d.yaml (the exporters' imports); the size of each file written;
  3. forward of the module in the file `export --to python` wrote vs the torchspec-built module:
     the same weights (strict load), the same input (batch 1), eval, no_grad, 1 torch thread,
     alternating rounds for about --forward-seconds per spec (the C3Ds skipped: 0.8 s a forward);
     ratio = built time / exported time (goal ~1.0: the generated code is plain torch);
  4. `torchspec import torchvision.models:resnet50` in process (`torchspec.importing`: construct,
     trace with torch.fx, verify) vs constructing torchvision's resnet50.
In-process times are medians of wall time (`perf_counter`) and of the process's CPU time (all its
threads; on a shared machine wall time includes waiting, and torch's threads spinning while they
wait for a core count as CPU time too, so both drift with the machine's load: read the ratios).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from check_speed import _ENV, measure  # noqa: E402

# name -> (spec file, variant); the C3D pair are the same net (c3d_ucf101 trains it on UCF-101)
SPECS: dict[str, tuple[Path, str | None]] = {
    "c3d": (ROOT / "specs" / "c3d.yaml", None),
    "c3d_ucf101": (ROOT / "specs" / "c3d_ucf101.yaml", None),
    "unet2d": (ROOT / "specs" / "unet2d.yaml", None),
    "resnet50": (ROOT / "specs" / "resnet.yaml", "resnet50"),
    "vit": (ROOT / "specs" / "vit.yaml", None),
}
TARGETS = {"python": ".py", "onnx": ".onnx", "exported-program": ".pt2"}
# Runs the command in this interpreter and says whether torch got imported on the way.
PROBE = "import sys; from torchspec.cli import main; main(sys.argv[1:]); print('torch' in sys.modules)"

Row = tuple[str, str, str]  # measure, result, goal


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(
    steps: dict[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each step after ``warmup`` untimed calls each; the order is
    reversed every other round so a slow spell of the machine hits all steps alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    walls: dict[str, list[float]] = {name: [] for name in steps}
    cpus: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            w, c = timed(steps[name])
            walls[name].append(w)
            cpus[name].append(c)
    med = statistics.median
    return {n: (med(walls[n]), med(cpus[n])) for n in steps}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1e3:.1f} ms"


def size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def draw_vs_check(names: list[str], whole: list[str], repeats: int, tmp: Path) -> list[Row]:
    from torchspec import infer_shapes, load_spec
    from torchspec.draw import draw

    rows: list[Row] = []
    for name in names:
        spec, variant = SPECS[name]
        picture = tmp / f"{name}.svg"

        def check(spec: Path = spec, variant: str | None = variant) -> object:
            return infer_shapes(load_spec(spec, variant=variant))

        def drawing(spec: Path = spec, variant: str | None = variant, picture: Path = picture) -> object:
            return draw(infer_shapes(load_spec(spec, variant=variant)), picture)

        t = alternate({"draw": drawing, "check": check}, max(repeats, 3))
        ratio = t["draw"][0] / t["check"][0]
        rows.append((f"{name}: draw / check, in process (wall)",
                     f"{ratio:.1f}x ({ms(t['draw'][0])} / {ms(t['check'][0])}, "
                     f"{size(picture.stat().st_size)} svg)", "-"))  # fmt: skip
    # main() refuses to start with torch imported, so torch here came from drawing
    rows.append(("torch imported by drawing, in process", "yes" if "torch" in sys.modules else "no", "no"))

    py = sys.executable
    commands = {"torch": [py, "-c", "import torch"]}  # one yardstick for all: it is the slowest
    for name in whole:
        spec, variant = SPECS[name]
        pick = ["--variant", variant] if variant else []
        out = str(tmp / f"{name}-cli.svg")
        commands[f"draw {name}"] = [py, "-m", "torchspec", "draw", str(spec), "-o", out, *pick]
        commands[f"check {name}"] = [py, "-m", "torchspec", "check", str(spec), *pick]
    wall, cpu = measure(commands, repeats) if whole else ({}, {})
    for name in whole:
        drawn, checked = f"draw {name}", f"check {name}"
        rows.append((f"{name}: `torchspec draw` / `torchspec check`",
                     f"{wall[drawn] / wall[checked]:.1f}x wall, {cpu[drawn] / cpu[checked]:.1f}x CPU "
                     f"({ms(wall[drawn])} / {ms(wall[checked])} wall)", "-"))  # fmt: skip
        ratio = wall[drawn] / wall["torch"]
        result = f"{ratio:.2f} wall, {cpu[drawn] / cpu['torch']:.2f} CPU"
        rows.append(
            (f"{name}: `torchspec draw` / `python -c 'import torch'`", result, f"< 1: {verdict(ratio < 1)}")
        )
    if whole:
        spec, variant = SPECS[whole[0]]
        pick = ["--variant", variant] if variant else []
        cmd = [py, "-c", PROBE, "draw", str(spec), "-o", str(tmp / "probe.svg"), *pick]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_ENV)
        imported = done.stdout.strip().splitlines()[-1] == "True"
        rows.append((f"torch imported by `torchspec draw` ({whole[0]})", "yes" if imported else "no", "no"))
    return rows


def export_vs_build(names: list[str], rounds: int, tmp: Path) -> list[Row]:
    import torchspec
    from torchspec.export import export

    def steps(name: str) -> dict[str, Callable[[], object]]:
        spec, variant = SPECS[name]
        out: dict[str, Callable[[], object]] = {"build": lambda: torchspec.build(spec, variant=variant)}
        for to, suffix in TARGETS.items():
            path = tmp / f"{name}{suffix}"
            out[to] = lambda to=to, path=path: export(spec, to, path, variant=variant)  # type: ignore[misc]
        return out

    # One warm-up of every step on the small U-Net pays the imports (the onnx exporter's are
    # seconds); each spec's steps are then timed from their first call on that spec.
    for step in steps("unet2d").values():
        step()
    rows: list[Row] = []
    for name in names:
        t = alternate(steps(name), rounds, warmup=0)
        build_wall, build_cpu = t["build"]
        rows.append((f"{name}: torchspec.build", f"{ms(build_wall)} wall, {ms(build_cpu)} CPU", "-"))
        for to, suffix in TARGETS.items():
            wall, cpu = t[to]
            rows.append((f"{name}: export --to {to} / build",
                         f"{wall / build_wall:.1f}x wall, {cpu / build_cpu:.1f}x CPU ({ms(wall)}), "
                         f"{size((tmp / f'{name}{suffix}').stat().st_size)}", "-"))  # fmt: skip
    return rows


def forward_speed(names: list[str], seconds: float, tmp: Path) -> list[Row]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [forward_ratio(name, seconds, tmp) for name in names]
    finally:
        torch.set_num_threads(threads)


def forward_ratio(name: str, seconds: float, tmp: Path) -> Row:
    """Built / exported forward time of one spec (the file from the export section, if written)."""
    import importlib.util

    import torch

    from torchspec.export import export, load_exportable
    from torchspec.export.python import python_source

    spec, variant = SPECS[name]
    item = load_exportable(spec, variant=variant)  # the torchspec-built module, eval, seed 0
    built = item.model
    path = tmp / f"{name}.py"
    if not path.exists():
        export(spec, "python", path, variant=variant)
    found = importlib.util.spec_from_file_location(f"exported_{name}", path)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    exported = getattr(module, python_source(item)[1])().eval()
    exported.load_state_dict(built.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(1, *item.report.spec.input_shape)  # one sample of the spec's (float) input
    with torch.no_grad():
        assert torch.allclose(exported(x), built(x), rtol=1e-4, atol=1e-5), f"{name}: outputs differ"
        one = min(timed(lambda: built(x))[0] for _ in range(2))
        rounds = max(5, min(301, int(seconds / (2 * one))))
        t = alternate({"built": lambda: built(x), "exported": lambda: exported(x)}, rounds, warmup=2)
    ratio = t["built"][0] / t["exported"][0]
    return (
        f"{name}: forward, built / exported python ({rounds} rounds)",
        f"{ratio:.3f} ({ms(t['built'][0])} / {ms(t['exported'][0])})",
        f"0.95..1.05: {verdict(0.95 <= ratio <= 1.05)}",
    )


def import_speed(factory: str, rounds: int) -> list[Row]:
    import torchvision

    from torchspec.importing import import_model, load_factory

    construct = getattr(torchvision.models, factory)

    def importing() -> Any:
        return import_model(load_factory(f"torchvision.models:{factory}"), [3, 224, 224], name=factory)

    t = alternate({"import": importing, "construct": construct}, rounds)
    wall, cpu = t["import"][0] / t["construct"][0], t["import"][1] / t["construct"][1]
    times = f"{ms(t['import'][0])} / {ms(t['construct'][0])}"
    return [
        (
            f"import torchvision.models:{factory} / constructing it",
            f"{wall:.1f}x wall, {cpu:.1f}x CPU ({times})",
            "-",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--specs", default="c3d,resnet50,unet2d", help=f"comma-separated, of {', '.join(SPECS)}"
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes of each command (1)")
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds after the warm-up (2, 4)")
    parser.add_argument("--forward-seconds", type=float, default=3.0, help="timed forwards per spec (3)")
    parser.add_argument("--quick", action="store_true", help="unet2d only, resnet18 for (4): a smoke run")
    args = parser.parse_args()
    names = ["unet2d"] if args.quick else [n.strip() for n in args.specs.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        parser.error(f"--specs: unknown {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    if "torch" in sys.modules:
        raise SystemExit("io_speed: torch was imported before drawing; the torch check would be void")
    whole = names[:1] if args.quick else names[:2]  # whole processes cost seconds: the first two specs

    start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        rows += draw_vs_check(names, whole, args.repeats, tmp)
        rows += export_vs_build(names, args.rounds, tmp)
        rows += forward_speed([n for n in names if not n.startswith("c3d")], args.forward_seconds, tmp)
    rows += import_speed("resnet18" if args.quick else "resnet50", args.rounds + 2)

    import torch

    print(f"machine: {sys.platform}, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}; specs {', '.join(names)}; {args.repeats} fresh processes per "
          f"command, {args.rounds} timed round(s) after a warm-up; medians; "
          f"{time.perf_counter() - start:.0f} s in all")  # fmt: skip
    widths = [max(len(row[i]) for row in [("measure", "result", "goal"), *rows]) for i in range(3)]
    for row in [("measure", "result", "goal"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
