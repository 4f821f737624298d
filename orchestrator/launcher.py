"""Starting Ray and the Ray Train run of one experiment.

``ray.address`` unset starts an embedded local cluster; ``auto`` or ``host:port`` joins
one. The TorchTrainer's scaling comes from ``conf/trainer``; its FailureConfig restarts a
worker group that lost a worker from the newest checkpoint.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray

log = logging.getLogger(__name__)


def init_ray(ray_cfg: Any) -> bool:
    """Connect to or start Ray. Returns True when this call started it (so we shut it down)."""
    if ray.is_initialized():
        return False
    # Ray Train prints per-step progress tables and V1 deprecation notes we do not need.
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    if ray_cfg.address:
        ray.init(address=ray_cfg.address, **kwargs)
    else:
        ray.init(num_cpus=ray_cfg.num_cpus, **kwargs)
    return True


def fit(
    train_loop: Any,
    loop_config: dict[str, Any],
    trainer_cfg: Any,
    storage_path: Path,
    run_name: str,
    callbacks: list[Any] | None = None,
) -> Any:
    """Run ``train_loop`` on ``trainer_cfg.num_workers`` workers; return Ray Train's Result.

    Resuming from a folder is the loop's job (``loop_config["resume_from"]``): Train V2 dropped
    ``resume_from_checkpoint``; its own checkpoints after a worker failure still come first.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cpus = float(ray.cluster_resources().get("CPU", 1))
    if trainer_cfg.cpus_per_worker:
        per_worker = float(trainer_cfg.cpus_per_worker)
    else:
        per_worker = 1.0 if trainer_cfg.use_gpu else max(1.0, min(2.0, cpus // max(trainer_cfg.num_workers, 1)))
        if not trainer_cfg.use_gpu and per_worker * trainer_cfg.num_workers > cpus:
            per_worker = cpus / trainer_cfg.num_workers  # a small machine: share what there is
    scaling = ScalingConfig(
        num_workers=trainer_cfg.num_workers,
        use_gpu=trainer_cfg.use_gpu,
        resources_per_worker={"CPU": per_worker, **({"GPU": 1} if trainer_cfg.use_gpu else {})},
    )
    run_config = RunConfig(
        name=run_name,
        storage_path=str(storage_path),
        failure_config=FailureConfig(max_failures=trainer_cfg.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=trainer_cfg.keep_checkpoints),
        callbacks=callbacks or None,
    )
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if trainer_cfg.use_gpu else "gloo"),
        scaling_config=scaling,
        run_config=run_config,
    )
    return trainer.fit()
