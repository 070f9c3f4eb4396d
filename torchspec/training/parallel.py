"""``train.parallel``: one process (``none``), ``nn.DataParallel`` (``dp``) or DDP under torchrun (``ddp``).

Under DDP every rank runs the same loop on its share of each epoch (see
:class:`~torchspec.training.data.EpochSampler`); gradients are averaged by DDP, so with mean-reduced
losses a step over world_size x batch_size samples is the single-process step over them. Metrics
and control flags (stop, non-finite loss) are reduced over a gloo group on the CPU, so they never
sync the GPU stream; rank 0 alone prints and writes files, between barriers. With gradient
accumulation the gradients are all-reduced once per optimizer step (:meth:`Parallel.gradient_sync`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from torchspec.errors import SpecError
from torchspec.spec import Spec
from torchspec.training.config import TrainConfig

__all__ = ["RANK_WEIGHTS_ENV", "Parallel", "start_parallel"]

# Tests (and the curious) set this to a folder: every DDP rank then saves rank<R>.safetensors there.
RANK_WEIGHTS_ENV = "TORCHSPEC_RANK_WEIGHTS_DIR"
TORCHRUN = "torchrun --standalone --nproc-per-node {n} -m torchspec train {spec} --set train.parallel=ddp"


@dataclass
class Parallel:
    kind: str = "none"  # none | dp | ddp
    rank: int = 0
    world_size: int = 1
    group: Any = None  # the gloo group for CPU-side reductions (ddp only)
    device_ids: list[int] | None = None  # dp only, when it really runs on several devices
    ddp: Any = None  # the DistributedDataParallel module wrap() made (ddp only)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.kind == "ddp"

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.group)

    def any(self, *flags: bool) -> list[bool]:
        """Each flag OR-ed over the ranks (every rank must call this at the same point)."""
        if not self.distributed:
            return list(flags)
        values = torch.tensor([int(f) for f in flags], dtype=torch.int64)
        dist.all_reduce(values, op=dist.ReduceOp.MAX, group=self.group)
        return [bool(v) for v in values.tolist()]

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over the ranks (float64 on the CPU; counts stay exact below 2**53)."""
        if not self.distributed:
            return dict(values)
        tensor = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return dict(zip(values, tensor.tolist()))

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if self.kind == "dp" and self.device_ids:
            return torch.nn.DataParallel(model, device_ids=self.device_ids)
        if self.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
            return self.ddp  # type: ignore[no-any-return]
        return model

    def gradient_sync(self, sync: bool) -> AbstractContextManager[Any]:
        """Around one batch's forward and backward. Under ddp without ``sync`` (an accumulation
        group's batch before its last), DDP's ``no_sync()``: the gradients add up on each rank, and
        the group's last backward all-reduces the sum once (the same mean gradient, one all-reduce
        per optimizer step). DDP decides in the forward whether the backward syncs, so the forward
        must be inside too."""
        if self.ddp is None or sync:
            return nullcontext()
        return self.ddp.no_sync()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def start_parallel(
    spec: Spec, config: TrainConfig, device: torch.device, say: Callable[[str], None]
) -> tuple[Parallel, torch.device]:
    """Check ``train.parallel`` against the machine; join the process group under ddp."""
    doc = spec.document
    if config.parallel == "dp":
        count = torch.cuda.device_count() if device.type == "cuda" else 0
        ids = list(config.device_ids) if config.device_ids is not None else list(range(count))
        if count < 2 or len(ids) < 2:
            what = (
                f"{count} CUDA device{'s' if count != 1 else ''}" if count else f"no CUDA device ({device})"
            )
            say(f"notice: parallel: dp needs several CUDA devices; found {what}: training on one device")
            return Parallel("dp"), device
        missing = [i for i in ids if i >= count]
        if missing:
            message = f"device_ids {missing} do not exist: this machine has CUDA devices 0..{count - 1}"
            raise SpecError([doc.problem(("train", "device_ids"), message)])
        return Parallel("dp", device_ids=ids), torch.device("cuda", ids[0])
    if config.parallel != "ddp":
        return Parallel(), device

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        spec_arg = doc.file if os.path.isfile(doc.file) else "SPEC"
        message = "parallel: ddp runs one process per device under torchrun, but RANK/WORLD_SIZE are not set"
        hints = [
            "start it with: " + TORCHRUN.format(n="N", spec=spec_arg),
            "several machines: --nnodes M --node-rank I --rdzv-endpoint HOST:PORT instead of --standalone",
        ]
        raise SpecError([doc.problem(("train", "parallel"), message, hints)])
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":  # one device per local rank; NCCL for the gradients
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        message = f"parallel: ddp runs on CUDA (nccl) or the CPU (gloo), not on {device}"
        raise SpecError([doc.problem(("train", "parallel"), message, ["set train.device: cpu or cuda"])])
    if not dist.is_initialized():
        dist.init_process_group(backend)  # torchrun's MASTER_ADDR/PORT, RANK, WORLD_SIZE
    group = dist.new_group(backend="gloo") if backend != "gloo" else None
    if rank == 0:
        say(f"ddp: {world_size} processes ({backend}), this one rank 0 on {device}")
    return Parallel("ddp", rank, world_size, group), device
