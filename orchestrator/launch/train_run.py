"""The Ray Train run of one experiment: a TorchTrainer over the config's workers.

Scaling comes from ``conf/trainer`` through :func:`orchestrator.config.derive.derive`; the
FailureConfig restarts a worker group that lost a worker from the newest checkpoint. On GPUs
the process group serves CPU and CUDA tensors (``cpu:gloo,cuda:nccl``): metrics are reduced
as small CPU tensors, gradients through NCCL.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


def process_group_backend(use_gpu: bool) -> str:
    return "cpu:gloo,cuda:nccl" if use_gpu else "gloo"


# Ray Train settings for a cluster on one machine (the embedded default, or nodes of one host):
# no node there can be preempted apart from the driver's, so the preemption watcher (one more
# actor process per run, ~5 s of start-up on 2 cores) has nothing to watch; and the controller
# polls its workers every 0.5 s instead of 2 s, so a short run does not wait on the poll to start
# and end. A variable the user set wins; a cluster of several machines keeps Ray's defaults.
ONE_MACHINE_TRAIN_ENV = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
}


def one_machine_env(nodes: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The Train settings for this cluster: ONE_MACHINE_TRAIN_ENV when every live node is on one
    host, else none."""
    import ray

    nodes = [n for n in (ray.nodes() if nodes is None else nodes) if n.get("Alive", True)]
    hosts = {n.get("NodeManagerAddress") for n in nodes}
    return dict(ONE_MACHINE_TRAIN_ENV) if len(hosts) <= 1 else {}


def fit(train_loop: Any, payload: Any, trainer_cfg: Any, derived: Any, storage: str, run_name: str,
        callbacks: list[Any] | None = None) -> Any:
    """Run ``train_loop({"payload": payload})`` on ``trainer_cfg.num_workers`` workers; return Ray Train's Result.

    Resuming from a folder is the loop's job (``payload.resume_from``): Train V2 dropped
    ``resume_from_checkpoint``; its own checkpoints after a worker failure still come first.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    scaling = ScalingConfig(
        num_workers=trainer_cfg.num_workers,
        use_gpu=trainer_cfg.use_gpu,
        resources_per_worker={"CPU": derived.cpus_per_worker, **({"GPU": 1} if trainer_cfg.use_gpu else {})},
    )
    run_config = RunConfig(
        name=run_name,
        storage_path=storage,
        failure_config=FailureConfig(max_failures=trainer_cfg.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=trainer_cfg.keep_checkpoints),
        callbacks=callbacks or None,
    )
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"payload": payload},
        torch_config=TorchConfig(backend=process_group_backend(trainer_cfg.use_gpu)),
        scaling_config=scaling,
        run_config=run_config,
    )
    from orchestrator.launch.placement_watch import watching

    console = getattr(payload, "console", None)
    # Ray Train hands these to its controller when fit() starts it
    with environment(one_machine_env()), watching(console.line if console is not None else None):
        return trainer.fit()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block, except variables the user set; restored after."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
