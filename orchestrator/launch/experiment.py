"""One experiment from a composed config: check, Ray, task, tools, weights, then the Ray Train run.

``run(cfg) -> metrics`` is kept apart from ``@hydra.main`` so tests and sweeps call it
directly. Everything that can be checked without Ray is checked first; a refused config has
written nothing.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from orchestrator.config.checks import ConfigError, check
from orchestrator.config.derive import derive
from orchestrator.launch.ray_cluster import check_cluster, cluster_cpus, init_ray, storage_path
from orchestrator.launch.train_run import fit
from orchestrator.algos import ALGORITHMS
from orchestrator.launch.warm_start import starting_weights
from orchestrator.task import build_task
from orchestrator.tools.pool import PoolOptions, build_router
from orchestrator.tracking.console import ConsoleChannel, ConsolePrinter, route_driver_logs
from orchestrator.tracking.tracker import new_run_id
from orchestrator.worker.checkpoint import find_latest, read_state
from orchestrator.worker.loop import WorkerPayload, train_worker

log = logging.getLogger("toolrl")


def resolve_resume(cfg: Any) -> str | None:
    """``trainer.resume``: a checkpoint folder (or a folder above one), or ``latest`` under
    outputs/<experiment_name>/."""
    resume = cfg.trainer.resume
    if not resume:
        return None
    if "://" in resume:  # a checkpoint in cloud (or file://) storage: Ray Train reads it as it is
        return resume
    root = Path(cfg.output_dir).parent if resume == "latest" else Path(resume).expanduser()
    found = root if (root / "state.pt").exists() else find_latest(root)
    if found is None:
        raise ConfigError(f"trainer.resume={resume}: no checkpoint (a folder with state.pt) in or below {root}")
    return str(found)


def run(cfg: DictConfig, run_id: str | None = None, report_to_tune: bool = False,
        console: ConsoleChannel | None = None, sweep_trials: int = 0) -> dict[str, Any]:
    """Train one model as ``cfg`` says; return the final metrics (eval accuracy among them).

    ``run_id`` fixes the W&B run id (a sweep trial keeps one across retries); ``report_to_tune``
    forwards every Ray Train report to the enclosing Tune trial; ``console`` is the sweep's
    channel (a run on its own makes one); ``sweep_trials``: the trials of the sweep that share
    the cluster (0: a run on its own).
    """
    typed = check(cfg)
    resume_from = resolve_resume(typed)
    timings: dict[str, float] = {}
    output_dir = Path(typed.output_dir).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    if console is None:
        route_driver_logs(output_dir / "logs" / "driver.log")

    t0 = time.perf_counter()
    started_ray = init_ray(typed.ray)
    timings["ray_start_s"] = time.perf_counter() - t0
    own_console = console is None
    channel = console or ConsoleChannel()
    printer = ConsolePrinter(channel).__enter__() if own_console else None
    router = None
    try:
        storage = typed.trainer.storage or storage_path(str(output_dir))
        check_cluster(typed.trainer, storage)
        task = build_task(typed.task)
        cpus = cluster_cpus()
        t0 = time.perf_counter()
        model_path = starting_weights(typed, task, channel, cpus, sweep_trials)
        timings["warm_start_s"] = time.perf_counter() - t0
        router = build_router(task.tools(), PoolOptions(**vars(typed.task.tools))) if task.tools() else None
        if resume_from:
            run_id = read_state(resume_from).run_id
            log.info("resuming from %s (W&B run %s)", resume_from, run_id)
        run_id = run_id or new_run_id()
        resolved = OmegaConf.to_container(cfg, resolve=True)
        resolved["output_dir"] = str(output_dir)
        resolved["tool_info"] = router.info() if router else {}
        typed.output_dir = str(output_dir)
        demos = None
        if ALGORITHMS[typed.algo.name].learns_from == "demonstrations" and getattr(typed.algo, "epochs", None) is not None:
            # an SFT run's steps follow the data: count it once, here
            demos = len(task.demonstrations(getattr(typed.algo, "num_demos", None), random.Random(0)))
        derived = derive(typed, cpus, sweep_trials, resolved=resolved, demonstrations=demos)
        run_name = f"{typed.experiment_name}-seed{typed.seed}"
        payload = WorkerPayload(cfg=typed, derived=derived, model_path=model_path, router=router, run_id=run_id,
                                run_name=run_name, resume_from=resume_from, console=channel)
        callbacks = []
        if report_to_tune:
            from ray.tune.integration.ray_train import TuneReportCallback

            callbacks.append(TuneReportCallback())
        t0 = time.perf_counter()
        result = fit(train_worker, payload, typed.trainer, derived, storage, run_name, callbacks)
        timings["train_s"] = time.perf_counter() - t0
    finally:
        if router is not None:
            router.shutdown()  # also when the run failed: a retried sweep trial builds new ones
        if printer is not None:
            printer.stop()
        if own_console:
            channel.shutdown()
        if started_ray:
            import ray

            ray.shutdown()
    if result.error:
        raise RuntimeError(f"training failed: {result.error}") from result.error
    metrics = dict(result.metrics or {})
    metrics.update({f"time/{k}": v for k, v in timings.items()})
    metrics["output_dir"] = str(output_dir)
    metrics["run_id"] = run_id
    if result.checkpoint is not None:
        metrics["checkpoint"] = result.checkpoint.path
    return metrics
