"""Multi-process training with `torchrun`: NCCL on GPUs, gloo on CPU.

Gradients are averaged with one all-reduce per parameter list after each backward pass (instead of
DistributedDataParallel hooks), which works for every graph the trainer builds, the R1 double
backward and frozen FreezeD layers included, and keeps the replicas bit-identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from poseface.devices import resolve_device


@dataclass
class Process:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(preference: str) -> Process:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(preference, local_rank)
    if world_size == 1:
        return Process(0, 1, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Process(dist.get_rank(), dist.get_world_size(), device)


def average_gradients(parameters: list[nn.Parameter], world_size: int) -> None:
    """All-reduce and average the gradients of `parameters` in one flat buffer."""
    if world_size == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for parameter, grad in zip(parameters, grads):
        n = grad.numel()
        parameter.grad = flat[offset : offset + n].view_as(grad).clone()
        offset += n


def broadcast_module(module: nn.Module, world_size: int) -> None:
    """Make every replica start from rank 0's parameters and buffers."""
    if world_size == 1:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def all_reduce_flag(flag: bool, world_size: int) -> bool:
    """True on every rank if it is True on any rank (used to skip a non-finite step everywhere)."""
    if world_size == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value)
    return bool(value.item() > 0)


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
