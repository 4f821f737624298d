"""Shared fixtures: composed configs for in-process runs, and one tiny-model cache per session.

The warm start (SFT) is the slowest part of a run; every test uses the default recipe and
seed and one cache folder, so it is built once per test session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.config import compose_config

os.environ.setdefault("WANDB_MODE", "offline")  # tests never talk to W&B's servers
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ["HF_HUB_OFFLINE"] = "1"  # tests read the local fixtures; no connection to any hub is tried
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent


def ensure_local_ray() -> None:
    """One embedded 2-CPU Ray cluster for the whole test session (each start costs ~5 s and 0.7 GB):
    started on first use, shut down when the session ends. A test that needs a cluster of its own
    (several nodes) shuts this one down first; the next user starts it again. Never ``ray stop``.

    The driver uses W&B before Ray starts (as a notebook or a sweep's summary run would), so workers
    inherit its WANDB_SERVICE: the killed-worker tests check that a restarted worker still gets its run."""
    import ray

    if not ray.is_initialized():
        import wandb

        wandb.setup()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)


@pytest.fixture
def local_ray():
    ensure_local_ray()
    yield


def pytest_sessionfinish(session, exitstatus):
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass


@pytest.fixture(scope="session")
def model_cache() -> str:
    """The tiny-model cache for this session (TOOLRL_TEST_CACHE reuses one across sessions)."""
    path = os.environ.get("TOOLRL_TEST_CACHE") or str(Path.home() / ".cache" / "toolrl-test")
    return path


# The suite's one warm start of the tiny model for RL runs: seed 0, and 300 SFT steps instead of
# the default 600 (134 s instead of 222 s here; from it PPO still takes the calculator from 0.28
# to 0.86 sampled / 1.00 greedy in 60 steps). Every test that starts RL from a warm start passes
# these, so one build serves them all. They keep the task's keys as they are, task.spec.num_eval
# included: the held-out problems are left out of the demonstrations, so every task key is part of
# the warm start's cache key, and a changed one builds a second warm start (~2 min).
WARM_START = ["model.tiny.seed=0", "model.tiny.sft_steps=300"]


@pytest.fixture(scope="session")
def calculator_warm_start(model_cache: str) -> str:
    """The suite's calculator warm start (WARM_START), built once on the session's shared cluster,
    where it is quickest (one worker, both cores), before a test of its own cluster needs it
    (tests/test_multinode.py would otherwise build it over two 1-CPU nodes)."""
    from orchestrator.config.checks import check
    from orchestrator.launch.ray_cluster import cluster_cpus
    from orchestrator.launch.warm_start import starting_weights
    from orchestrator.task import build_task
    from orchestrator.tracking.console import ConsoleChannel

    ensure_local_ray()
    cfg = check(make_cfg([f"cache_dir={model_cache}", *WARM_START]))
    channel = ConsoleChannel()
    try:
        return starting_weights(cfg, build_task(cfg.task), channel, cluster_cpus())
    finally:
        channel.shutdown()


def make_cfg(overrides: list[str]):
    """The composed config of ``python -m orchestrator <overrides>``."""
    return compose_config(overrides)


def make_task(name: str, model: str = "tiny", **spec):
    """The task a run of ``task=<name> model=<model>`` builds (conf/task/<name>.yaml and, for the
    tiny model, its conf/experiment/<name>_tiny.yaml), ``spec`` keys overridden."""
    from orchestrator.task import build_task

    overrides = [f"task={name}", f"model={model}", *(f"task.spec.{k}={_yaml(v)}" for k, v in spec.items())]
    return build_task(make_cfg(overrides).task)


def _yaml(value):
    return "null" if value is None else str(value)


def make_algo_cfg(name: str, **overrides):
    """The typed config of conf/algo/<name>.yaml (a hub model's, no tiny-model hparams), keys overridden."""
    import dataclasses

    from omegaconf import OmegaConf

    cfg = OmegaConf.to_object(make_cfg([f"algo={name}", "model=gpt2"]).algo)
    return dataclasses.replace(cfg, **overrides)


def make_setup(lm, reference=None, **overrides):
    """An AlgoSetup for one CPU worker (no DDP) around ``lm``; ``reference`` defaults to a copy."""
    import copy

    import torch

    from orchestrator.algos import AlgoSetup

    values = dict(lm=lm, reference=lambda: reference if reference is not None else copy.deepcopy(lm), pad_id=0,
                  device=torch.device("cpu"), rank=0, world_size=1, minibatch_size=64, max_steps=10, max_length=64,
                  seed=0, wrap=lambda module: module)
    values.update(overrides)
    return AlgoSetup(**values)
