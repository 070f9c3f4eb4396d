"""What do blocks, repeat and expressions cost? Ratios measured side by side in one run.

    python bench/zoo_speed.py [--repeats 7] [--rounds 9] [--batch 8] [--size 224]

Prints:
  1. `torchspec check specs/resnet.yaml --variant resnet50` (blocks, repeat, expressions expanded)
     / `torchspec check specs/c3d.yaml` (goal <= 1.5) and / `python -c "import torch"` (goal <= 0.2),
     fresh interpreters, interleaved, medians;
  2. expansion of resnet50 with its depths scaled 1, 2, 4, 8x (`--set vars.depths=[...]`): time,
     expanded nodes (mappings, lists, values) and time per node (linear cost keeps it flat);
  3. forward + backward on the CPU of the spec-built resnet50 vs torchvision's resnet50, same
     weights, same batch, train() mode, warmed up and timed in alternation; ratio = torchvision's
     time / the spec's (goal >= 0.98).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESNET, C3D = ROOT / "specs" / "resnet.yaml", ROOT / "specs" / "c3d.yaml"
sys.path.insert(0, str(ROOT / "bench"))

from check_speed import side_by_side  # noqa: E402


def nodes(data: Any) -> int:
    """Mappings, lists and values in ``data``: what the expansion bound counts."""
    if isinstance(data, dict):
        return 1 + sum(nodes(v) for v in data.values())
    if isinstance(data, list):
        return 1 + sum(nodes(v) for v in data)
    return 1


def expansion(scale: int, repeats: int) -> tuple[float, int]:
    """(median seconds to expand resnet50 with depths * scale, expanded nodes); parsing excluded."""
    from dataclasses import replace

    from torchspec.expand import expand_document
    from torchspec.layers import REGISTRY
    from torchspec.source import load_document
    from torchspec.training.overrides import apply_overrides

    doc = load_document(RESNET)
    depths = [d * scale for d in (3, 4, 6, 3)]
    data = dict(doc.data)
    doc = replace(doc, data=data, overrides=apply_overrides(data, [f"vars.depths={depths}"]))
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = expand_document(doc, variant="resnet50", builtin=REGISTRY)
        times.append(time.perf_counter() - start)
    assert out is not None
    return statistics.median(times), nodes(out.data)


def alternate(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median seconds of each step, after two warm-up calls each, in alternating order per round."""
    for step in [*steps.values(), *steps.values()]:
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def train_step_speed(rounds: int, batch: int, size: int) -> dict[str, float]:
    """Median forward+backward seconds of the spec-built and of torchvision's resnet50."""
    import torch
    import torchvision

    import torchspec

    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None).train()
    ours = torchspec.build(RESNET, variant="resnet50", overrides=[f"input=[3, {size}, {size}]"]).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 1000, (batch,))

    def step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()

        return run

    return alternate({"spec": step(ours), "torchvision": step(theirs)}, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command (1, 2)")
    parser.add_argument("--rounds", type=int, default=9, help="timed training steps of each model (3)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="image height and width (3)")
    args = parser.parse_args()
    import torch

    py = sys.executable
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    med = side_by_side(
        {
            "resnet50": [py, "-m", "torchspec", "check", str(RESNET), "--variant", "resnet50"],
            "c3d": [py, "-m", "torchspec", "check", str(C3D)],
            "torch": [py, "-c", "import torch"],
        },
        args.repeats,
    )
    vs_c3d, vs_torch = med["resnet50"] / med["c3d"], med["resnet50"] / med["torch"]
    print(f"1. check resnet50 {med['resnet50'] * 1e3:.0f} ms, check c3d {med['c3d'] * 1e3:.0f} ms, "
          f"import torch {med['torch'] * 1e3:.0f} ms ({args.repeats} interleaved runs, medians)\n"
          f"   check resnet50 / check c3d = {vs_c3d:.2f} (goal <= 1.5: {_verdict(vs_c3d <= 1.5)}); "
          f"check resnet50 / import torch = {vs_torch:.3f} "
          f"(goal <= 0.2: {_verdict(vs_torch <= 0.2)})")  # fmt: skip

    print("2. expanding resnet50 with its depths scaled (in process, parsing excluded, medians of 5):")
    per_node = []
    for scale in (1, 2, 4, 8):
        seconds, count = expansion(scale, 5)
        per_node.append(seconds / count)
        each = seconds / count * 1e6
        print(f"   x{scale}: {seconds * 1e3:7.1f} ms, {count:6,} nodes, {each:5.2f} us per node")
    print(f"   per-node time x8 / x1 = {per_node[-1] / per_node[0]:.2f} (1.0 = linear)")

    t = train_step_speed(args.rounds, args.batch, args.size)
    ratio = t["torchvision"] / t["spec"]
    print(f"3. resnet50 forward+backward, batch {args.batch} x 3 x {args.size} x {args.size}, CPU, "
          f"{args.rounds} alternating rounds, medians: spec {t['spec'] * 1e3:.0f} ms, torchvision "
          f"{t['torchvision'] * 1e3:.0f} ms, torchvision / spec = {ratio:.3f} "
          f"(goal >= 0.98: {_verdict(ratio >= 0.98)})")  # fmt: skip


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


if __name__ == "__main__":
    main()
