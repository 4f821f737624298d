"""Every number the run computes from the config, computed once, here.

Per-worker batch and minibatch sizes, prompts per step (GRPO draws several episodes per
prompt), the tiny model's positions, CPUs and torch threads per worker and per sweep trial.
:func:`check_shapes` runs before Ray starts (it needs the config alone); :func:`derive`
adds what depends on the cluster (its CPUs, the trials that share it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Derived:
    """What the workers read instead of recomputing it from the config."""

    # The seed of this run (the warm start's recipe seed for a warm start).
    seed: int
    max_steps: int
    # Episodes each worker draws per step (batch_size / num_workers).
    episodes_per_worker: int
    # Problems each worker rolls out per step (episodes / the algorithm's episodes per prompt).
    prompts_per_worker: int
    # Episodes per gradient step (or accumulation chunk) on each worker.
    minibatch_per_worker: int
    # Tokens per episode at most (task.env.max_length).
    max_length: int
    # Demonstrations an SFT run asks the task for (null: all it has).
    num_demos: int | None
    cpus_per_worker: float
    threads_per_worker: int
    # The resolved config as plain data (W&B's run config).
    resolved: dict[str, Any]
    # An SFT run's steps hold demonstrations of similar lengths (trainer.group_by_length).
    group_by_length: bool = False


def episodes_per_prompt(algo_cfg: Any) -> int:
    from orchestrator.algos import ALGORITHMS

    return ALGORITHMS[algo_cfg.name].episodes_per_prompt(algo_cfg)


def check_shapes(cfg: Any) -> list[str]:
    """The sizes that must divide each other, as ``key: problem`` lines (empty when all fit)."""
    tr, algo = cfg.trainer, cfg.algo
    problems = []
    if tr.batch_size % tr.num_workers:
        problems.append(f"trainer.batch_size: {tr.batch_size} does not split evenly over "
                        f"trainer.num_workers={tr.num_workers}")
        return problems
    per_worker = tr.batch_size // tr.num_workers
    group = episodes_per_prompt(algo)
    if per_worker % group:
        problems.append(f"trainer.batch_size: {tr.batch_size} episodes over {tr.num_workers} worker(s) is "
                        f"{per_worker} per worker, not whole groups of algo.group_size={group}")
    minibatch = getattr(algo, "minibatch_size", None)
    if minibatch is not None:
        if minibatch > tr.batch_size:
            problems.append(f"algo.minibatch_size: {minibatch} is larger than trainer.batch_size={tr.batch_size}")
        elif minibatch % tr.num_workers:
            problems.append(f"algo.minibatch_size: {minibatch} does not split evenly over trainer.num_workers="
                            f"{tr.num_workers} (it counts episodes over all workers)")
    tiny = cfg.model.tiny if cfg.model.source == "tiny" else None
    if tiny is not None and tiny.n_positions is not None and cfg.task.env.max_length > tiny.n_positions:
        problems.append(f"task.env.max_length: {cfg.task.env.max_length} exceeds model.tiny.n_positions="
                        f"{tiny.n_positions}")
    return problems


def cpus_per_worker(tr: Any, cluster_cpus: float, sweep_trials: int = 0) -> float:
    """The CPUs a worker reserves: trainer.cpus_per_worker, else its share of the cluster (at
    most 2 when one run has the cluster to itself; 1 with a GPU). ``sweep_trials``: how many
    trials of a sweep share the cluster (0: a run of its own). Each trial's coordinator holds
    a sliver of a CPU, so a trial's workers ask for a little less than its share: asking for the
    whole share would wait forever for CPUs the coordinators hold."""
    if tr.cpus_per_worker:
        return float(tr.cpus_per_worker)
    if tr.use_gpu:
        return 1.0
    if sweep_trials:
        from orchestrator.launch.sweep import TRIAL_CPU

        # the trials' coordinators may all sit on one node
        share = cluster_cpus / sweep_trials - TRIAL_CPU * sweep_trials
        return math.floor(max(share, TRIAL_CPU) / tr.num_workers * 1000) / 1000
    share = cluster_cpus
    per_worker = max(1.0, min(2.0, share // tr.num_workers))
    return per_worker if per_worker * tr.num_workers <= share else share / tr.num_workers


def max_steps(cfg: Any, demonstrations: int | None = None) -> int:
    """trainer.max_steps, or (an SFT run with algo.epochs) the steps of that many passes over the
    task's ``demonstrations``."""
    from orchestrator.algos import ALGORITHMS

    epochs = getattr(cfg.algo, "epochs", None)
    if epochs is None or demonstrations is None or ALGORITHMS[cfg.algo.name].learns_from != "demonstrations":
        return cfg.trainer.max_steps
    return max(1, math.ceil(epochs * demonstrations / cfg.trainer.batch_size))


def derive(cfg: Any, cluster_cpus: float, sweep_trials: int = 0, resolved: dict[str, Any] | None = None,
           seed: int | None = None, demonstrations: int | None = None) -> Derived:
    """``cfg`` is the typed RunConfig (shapes already checked); ``sweep_trials``: the trials of a
    sweep that run at once (0: not a sweep); ``demonstrations``: how many the task has, for an
    SFT run that counts in epochs."""
    tr, algo = cfg.trainer, cfg.algo
    per_worker = tr.batch_size // tr.num_workers
    minibatch = getattr(algo, "minibatch_size", None) or tr.batch_size
    cpus = cpus_per_worker(tr, cluster_cpus, sweep_trials)
    threads = tr.threads_per_worker or max(1, round(cpus) if not tr.use_gpu else 1)
    return Derived(
        seed=cfg.seed if seed is None else seed,
        max_steps=max_steps(cfg, demonstrations),
        episodes_per_worker=per_worker,
        prompts_per_worker=per_worker // episodes_per_prompt(algo),
        minibatch_per_worker=max(1, minibatch // tr.num_workers),
        max_length=cfg.task.env.max_length,
        num_demos=getattr(algo, "num_demos", None),
        cpus_per_worker=cpus,
        threads_per_worker=int(threads),
        resolved=resolved or {},
        group_by_length=tr.group_by_length,
    )
