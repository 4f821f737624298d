"""Reductions over the Ray Train worker group (torch.distributed underneath).

On GPUs the process group serves both CPU tensors (gloo) and CUDA tensors (NCCL)
(``cpu:gloo,cuda:nccl``, set where the group is made): these helpers reduce small CPU
float64 tensors, which NCCL alone would refuse.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sums over workers (the same list length on every rank)."""
    if world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def all_mean(metrics: dict[str, float]) -> dict[str, float]:
    """Average each metric over workers (keys agree: same code, same step). Only for metrics
    whose every rank's share has the same weight; ratios and spreads use sums and counts."""
    size = world()[1]
    if size == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    return {k: v / size for k, v in zip(keys, all_sum([float(metrics[k]) for k in keys]))}


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def param_digest_spread(model: torch.nn.Module) -> float:
    """max - min over workers of a weighted parameter sum: 0.0 when all workers hold the same weights."""
    with torch.no_grad():
        digest = sum(float((p.double() * (i + 1)).sum()) for i, p in enumerate(model.parameters()))
    size = world()[1]
    if size == 1:
        return 0.0
    gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(size)]
    dist.all_gather(gathered, torch.tensor([digest], dtype=torch.float64))
    values = [g.item() for g in gathered]
    return max(values) - min(values)
