"""Do graphs cost anything? Ratios measured side by side in one run (absolute times drift).

    python bench/graph_speed.py [--rounds 15] [--batch 32] [--repeats 7] [--threads 1]

Prints:
  1. training speed of specs/resnet_cifar.yaml built by torchspec (torch.fx GraphModules) vs the
     same network hand-written in PyTorch with the same weights: forward + backward on the CPU,
     the two timed in alternation; ratio = hand-written time / graph time (goal >= 0.98);
  2. `torchspec check specs/resnet_cifar.yaml` / `torchspec check specs/c3d.yaml` (goal <= 1.2)
     and `check specs/c3d.yaml` / `python -c "import torch"` (goal <= 0.15), fresh interpreters
     (bytecode caches written, as after `pip install`), as wall time and as CPU time (user +
     system): on a machine shared with other work, wall time is mostly waiting, CPU time is the
     command's own cost;
  3. checking generated graphs of 625 .. 5,000 nodes with a skip (Add) every 4 layers: CPU time per
     node (linear cost keeps it flat), then `torchspec check` of the 5,000-node graph as a user runs
     it (goal: under 1 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from check_speed import measure  # noqa: E402


def hand_written() -> object:
    """specs/resnet_cifar.yaml written by hand: same modules, same names, a plain forward."""
    import torch.nn.functional as F
    from torch import Tensor, nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            if stride != 1:
                self.down = nn.Conv2d(cin, cout, 1, stride, bias=False)
                self.down_bn = nn.BatchNorm2d(cout)
            self.out = nn.ReLU(inplace=True)
            self.stride = stride

        def forward(self, x: Tensor) -> Tensor:
            h = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            short = self.down_bn(self.down(x)) if self.stride != 1 else x
            return self.out(h + short)

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = nn.Sequential()
            self.layer1.add_module("block1", Block(16, 16, 1))
            self.layer1.add_module("block2", Block(16, 16, 1))
            self.layer2 = nn.Sequential()
            self.layer2.add_module("block1", Block(16, 32, 2))
            self.layer2.add_module("block2", Block(32, 32, 1))
            self.layer3 = nn.Sequential()
            self.layer3.add_module("block1", Block(32, 64, 2))
            self.layer3.add_module("block2", Block(64, 64, 1))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: Tensor) -> Tensor:
            x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return ResNet()


def train_speed(rounds: int, batch: int, threads: int = 1) -> tuple[float, float, float]:
    """Median seconds per forward+backward step: (graph, hand-written, ratio hand/graph).

    One intra-op thread by default: the comparison is of the Python around the kernels, and on a
    busy machine several threads per step mostly measure how long they wait for each other.
    """
    import torch

    import torchspec

    torch.set_num_threads(threads)

    torch.manual_seed(0)
    graph = torchspec.build(ROOT / "specs" / "resnet_cifar.yaml", seed=0).train()
    hand = hand_written()
    hand.load_state_dict(graph.state_dict())  # type: ignore[attr-defined]
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    with torch.no_grad():  # same weights, same function (train-mode BatchNorm: same batch stats)
        torch.testing.assert_close(graph(x), hand(x))  # type: ignore[operator]

    def step(model: object) -> float:
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)  # type: ignore[operator]
        loss.backward()
        return time.perf_counter() - start

    for model in (graph, hand, graph, hand):  # warm-up
        step(model)
    times: dict[str, list[float]] = {"graph": [], "hand": []}
    for r in range(rounds):
        order = [("graph", graph), ("hand", hand)] if r % 2 == 0 else [("hand", hand), ("graph", graph)]
        for name, model in order:
            times[name].append(step(model))
    g, h = statistics.median(times["graph"]), statistics.median(times["hand"])
    return g, h, h / g


def generated_graph(nodes: int) -> dict[str, object]:
    """A valid graph of ``nodes`` layers: Linear, ReLU, Linear, Add(skip over the three)."""
    layers: list[dict[str, object]] = []
    for i in range(nodes):
        kind = i % 4
        if kind == 3:
            skip = f"n{i - 4}" if i >= 4 else "input"
            layers.append({"name": f"n{i}", "type": "Add", "from": [f"n{i - 1}", skip]})
        elif kind == 1:
            layers.append({"name": f"n{i}", "type": "ReLU"})
        else:
            layers.append({"name": f"n{i}", "type": "Linear", "out_features": 32})
    return {"name": "generated_graph", "input": [32], "layers": layers}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for part 1")
    args = parser.parse_args()

    g, h, ratio = train_speed(args.rounds, args.batch, args.threads)
    print(f"1. resnet_cifar forward+backward, batch {args.batch}, CPU, {args.threads} thread(s), median of "
          f"{args.rounds} interleaved steps each: torchspec graph {g * 1e3:.1f} ms, "
          f"hand-written {h * 1e3:.1f} ms, ratio {ratio:.3f} (goal >= 0.98)")  # fmt: skip

    py = sys.executable
    commands = {
        "resnet": [py, "-m", "torchspec", "check", str(ROOT / "specs" / "resnet_cifar.yaml")],
        "c3d": [py, "-m", "torchspec", "check", str(ROOT / "specs" / "c3d.yaml")],
        "torch": [py, "-c", "import torch"],
    }
    for label, times in zip(("wall", "CPU"), measure(commands, args.repeats)):
        print(f"2. ({label} time, median of {args.repeats} fresh interpreters) check resnet_cifar "
              f"{times['resnet']:.3f} s / check c3d {times['c3d']:.3f} s = "
              f"{times['resnet'] / times['c3d']:.2f} (goal <= 1.2); check c3d / import torch "
              f"{times['torch']:.3f} s = {times['c3d'] / times['torch']:.3f} (goal <= 0.15)")  # fmt: skip

    import torchspec

    print("3. generated graphs (a skip every 4 layers), load + wire + infer in process (CPU time):")
    per_node = []
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (625, 1250, 2500, 5000):
            data = generated_graph(nodes)
            best = min(_timed(torchspec.infer_shapes, data) for _ in range(3))
            per_node.append(best / nodes)
            print(f"   {nodes:>5} nodes: {best:.3f} s, {best / nodes * 1e6:.1f} us per node")
        print(f"   per-node time 5,000 vs 625 nodes: {per_node[-1] / per_node[0]:.2f}x (1.0 = linear)")
        path = Path(tmp) / "graph5000.json"
        path.write_text(json.dumps(generated_graph(5000)))
        walls, cpus = measure({"check": [py, "-m", "torchspec", "check", str(path)]}, args.repeats)
        print(f"   `torchspec check` of the 5,000-node graph (JSON file, fresh interpreter, table printed): "
              f"{walls['check']:.3f} s wall, {cpus['check']:.3f} s CPU (goal < 1 s)")  # fmt: skip


def _timed(fn: object, data: object) -> float:
    start = time.process_time()
    fn(data)  # type: ignore[operator]
    return time.process_time() - start


if __name__ == "__main__":
    main()
