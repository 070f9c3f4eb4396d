"""How fast is `torchspec check`? Ratios measured side by side in one run (absolute times drift).

    python bench/check_speed.py [--repeats 7]

Prints:
  1. `torchspec check specs/c3d.yaml` wall time / `python -c "import torch"` wall time (goal <= 0.15)
  2. torchinfo's path on the same C3D (import torch + torchinfo, build, summary) / torchspec check
     (goal >= 20x; skipped when torchinfo is not installed)
  3. checking generated specs of 1,250 .. 10,000 layers: wall time and time per layer (linear
     growth keeps the per-layer time flat; goal: 5,000 layers in under 1 s)
Each command runs in a fresh interpreter (`python -m torchspec`, as the console script does, minus
any shell shim), alternating between the compared commands so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
C3D = ROOT / "specs" / "c3d.yaml"

TORCHINFO = f"""
import torch, torchinfo, torchspec
model = torchspec.build({str(C3D)!r})
torchinfo.summary(model, input_size=(1, 3, 16, 112, 112), device="meta", verbose=0)
"""


# Fresh interpreters as after `pip install`: bytecode caches written (a shell exporting
# PYTHONDONTWRITEBYTECODE would make every run compile every module from source).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``cmd`` in a fresh process.

    CPU time is what the command itself costs; wall time adds whatever else the machine runs (on a
    shared machine, several times the CPU time), so both are reported.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def wall(cmd: list[str]) -> float:
    return run_once(cmd)[0]


def measure(commands: dict[str, list[str]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median (wall, CPU) seconds of each command, runs interleaved round-robin after one warm-up
    each (which also writes the bytecode caches)."""
    for cmd in commands.values():
        run_once(cmd)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            w, c = run_once(cmd)
            walls[name].append(w)
            cpus[name].append(c)
    median = statistics.median
    return {n: median(t) for n, t in walls.items()}, {n: median(t) for n, t in cpus.items()}


def side_by_side(commands: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Median wall time of each command (see :func:`measure`)."""
    return measure(commands, repeats)[0]


def generated_spec(layers: int, directory: Path) -> Path:
    """A valid MLP-ish spec of `layers` layers: Linear / ReLU / LayerNorm repeated."""
    lines = ["name: generated", "input: [64]", "layers:"]
    cycle = [
        "  - {type: Linear, out_features: 64}",
        "  - ReLU",
        "  - {type: LayerNorm, normalized_shape: 64}",
    ]
    lines += [cycle[i % 3] for i in range(layers)]
    path = directory / f"gen_{layers}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    check = [py, "-m", "torchspec", "check", str(C3D)]

    commands = {"check": check, "import torch": [py, "-c", "import torch"]}
    have_torchinfo = importlib.util.find_spec("torchinfo") is not None
    if have_torchinfo:
        commands["torchinfo"] = [py, "-c", TORCHINFO]
    med = side_by_side(commands, args.repeats)
    print(
        f"machine: {sys.platform}, python {sys.version.split()[0]}, {args.repeats} interleaved runs, medians"
    )
    print(f"  torchspec check c3d: {med['check'] * 1000:7.0f} ms")
    print(f"  python -c 'import torch': {med['import torch'] * 1000:7.0f} ms")
    ratio = med["check"] / med["import torch"]
    print(f"1. check / import torch = {ratio:.3f}   (goal <= 0.15: {'met' if ratio <= 0.15 else 'NOT met'})")
    if have_torchinfo:
        speedup = med["torchinfo"] / med["check"]
        print(f"  torchinfo path (import, build, summary): {med['torchinfo'] * 1000:7.0f} ms")
        verdict = "met" if speedup >= 20 else "NOT met"
        print(f"2. torchinfo / torchspec check = {speedup:.1f}x   (goal >= 20x: {verdict})")
    else:
        print("2. torchinfo not installed (pip install torchinfo): comparison skipped")

    print("3. generated specs (in-process load_spec + infer_shapes, best of 3):")
    from torchspec import infer_shapes

    with tempfile.TemporaryDirectory() as tmp:
        per_layer = []
        for n in (1250, 2500, 5000, 10000):
            path = generated_spec(n, Path(tmp))
            best = min(_timed(lambda p=path: infer_shapes(p)) for _ in range(3))
            per_layer.append(best / n)
            print(f"   {n:6d} layers: {best * 1000:7.1f} ms  ({best / n * 1e6:5.1f} us/layer)")
        cli = side_by_side(
            {"cli5000": [py, "-m", "torchspec", "check", str(generated_spec(5000, Path(tmp)))]}, 3
        )
        print(
            f"   `torchspec check` on 5,000 layers, whole process: {cli['cli5000'] * 1000:.0f} ms "
            f"(goal < 1 s: {'met' if cli['cli5000'] < 1 else 'NOT met'})"
        )
        print(f"   per-layer time 10,000 vs 1,250 layers: {per_layer[-1] / per_layer[0]:.2f}x (1.0 = linear)")


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
