"""Process-group set-up that works the same under torchrun and as one plain process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: str | None = None) -> World:
    """Joins the process group when launched by torchrun (NCCL on GPU, gloo on CPU); else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device(device or "cpu")
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local_rank, chosen)


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather_with_grad(x: torch.Tensor, world: World) -> torch.Tensor:
    """All ranks' rows in rank order; gradients flow back to each rank's own rows."""
    if not world.distributed:
        return x
    from torch.distributed._functional_collectives import all_gather_tensor_autograd

    # backward sums each rank's gradient for these rows (a reduce-scatter)
    return all_gather_tensor_autograd(x.contiguous(), gather_dim=0, group=dist.group.WORLD)


def mean_over_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """For logging: the mean of a scalar over ranks (no gradient)."""
    if not world.distributed:
        return value.detach()
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world.size


def average_gradients(params: list[torch.Tensor], world: World) -> None:
    """All-reduce (mean) the gradients of parameters that no DDP/FSDP wrapper synchronises."""
    if not world.distributed:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world.size
