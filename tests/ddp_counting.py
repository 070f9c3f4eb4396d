"""``torchspec ARGS`` under torchrun, counting DDP's gradient all-reduces (for tests/test_ddp.py).

The DDP module the run makes gets a comm hook (torch's documented way to replace DDP's all-reduce,
``register_comm_hook``) that records, for each bucket it all-reduces, the bucket's index and how
many forward passes the DDP module had made by then, and then runs torch's default all-reduce
(``default_hooks.allreduce_hook``: divide by the world size, sum over the ranks). Rank R writes the
records to ``$TORCHSPEC_RANK_WEIGHTS_DIR/allreduce<R>.json`` as ``[[bucket, forwards], ...]``.

Run as ``python -m torch.distributed.run --nproc-per-node 2 tests/ddp_counting.py train SPEC ...``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from torchspec.cli import main
from torchspec.training import parallel
from torchspec.training.parallel import RANK_WEIGHTS_ENV


def counting_main(argv: list[str]) -> int:
    forwards = [0]  # forward passes of the DDP module so far (training only: validation uses the plain one)
    calls: list[list[int]] = []  # [bucket index, forwards so far] per all-reduce
    real_wrap = parallel.Parallel.wrap

    def wrap(self: parallel.Parallel, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        net = real_wrap(self, model, device)
        assert isinstance(net, torch.nn.parallel.DistributedDataParallel)

        def count_forward(module: torch.nn.Module, args: Any) -> None:
            forwards[0] += 1

        def hook(state, bucket):  # type: ignore[no-untyped-def]  # torch checks the annotations: none
            calls.append([bucket.index(), forwards[0]])
            return default_hooks.allreduce_hook(state, bucket)  # state None: the default group

        net.register_forward_pre_hook(count_forward)
        net.register_comm_hook(None, hook)
        return net

    parallel.Parallel.wrap = wrap  # type: ignore[method-assign]
    code = main(argv)
    folder = os.environ[RANK_WEIGHTS_ENV]
    with open(os.path.join(folder, f"allreduce{os.environ['RANK']}.json"), "w") as file:
        json.dump(calls, file)
    return code


if __name__ == "__main__":
    sys.exit(counting_main(sys.argv[1:]))
