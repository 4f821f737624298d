"""Where a worker runs: its rank, device and threads, and where its log lines go."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class WorkerContext:
    rank: int
    world_size: int
    local_world_size: int
    device: torch.device


def start_worker(trainer_cfg: Any, derived: Any, output_dir: str, quiet: bool = False) -> WorkerContext:
    """Rank, device and torch threads of this Ray Train worker; its log records (ours and the
    libraries') go to ``<output_dir>/logs/worker-<rank>.log``, not to the console."""
    import ray.train

    train_ctx = ray.train.get_context()
    rank = train_ctx.get_world_rank()
    ctx = WorkerContext(rank, train_ctx.get_world_size(), train_ctx.get_local_world_size(),
                        ray.train.torch.get_device() if trainer_cfg.use_gpu else torch.device("cpu"))
    # Oversubscribed threads thrash on a busy node: the CPUs this worker reserved (derive()).
    torch.set_num_threads(derived.threads_per_worker)
    route_logs_to_file(Path(output_dir) / "logs" / f"worker-{rank}.log")
    from orchestrator.tracking.console import quiet_progress_bars

    quiet_progress_bars()
    return ctx


def route_logs_to_file(path: Path) -> None:
    """Every log record and warning of this process into ``path`` (appended, so a restarted
    worker keeps its predecessor's lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    for name in ("transformers", "datasets", "torch", "ray"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
