"""One experiment from a composed config: task, model, tools, then the Ray Train run.

``run(cfg) -> metrics`` is kept apart from ``@hydra.main`` so tests and sweeps call it
directly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from orchestrator.checkpoint import find_latest
from orchestrator.config import validate
from orchestrator.launcher import fit, init_ray
from orchestrator.models.loading import prepare_model
from orchestrator.task import Task
from orchestrator.tools.pool import PoolOptions, build_router
from orchestrator.tracking import new_run_id

log = logging.getLogger("orchestrator")


def resolve_resume(cfg: DictConfig) -> str | None:
    """``trainer.resume``: a checkpoint folder, or ``latest`` under outputs/<experiment_name>/."""
    resume = cfg.trainer.resume
    if not resume:
        return None
    if resume == "latest":
        root = Path(cfg.output_dir).parent
        found = find_latest(root)
        if found is None:
            raise ValueError(f"trainer.resume=latest: no checkpoint (a folder with state.pt) under {root}")
        return str(found)
    path = Path(resume)
    if not (path / "state.pt").exists():
        found = find_latest(path) if path.exists() else None
        if found is None:
            raise ValueError(f"trainer.resume={resume}: not a checkpoint folder (no state.pt in or below it)")
        path = found
    return str(path)


def run(cfg: DictConfig, run_id: str | None = None, report_to_tune: bool = False) -> dict[str, Any]:
    """Train one model as ``cfg`` says; return the final metrics (eval accuracy among them).

    ``run_id`` fixes the W&B run id (a sweep trial keeps one across retries);
    ``report_to_tune`` forwards every Ray Train report to the enclosing Tune trial.
    """
    from orchestrator.train_loop import train_loop_per_worker

    validate(cfg)
    timings: dict[str, float] = {}
    output_dir = Path(cfg.output_dir).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    resume_from = resolve_resume(cfg)

    t0 = time.perf_counter()
    started_ray = init_ray(cfg.ray)
    timings["ray_start_s"] = time.perf_counter() - t0
    try:
        task: Task = hydra.utils.instantiate(cfg.task.spec)
        t0 = time.perf_counter()
        model_path = prepare_model(cfg.model, task, str(Path(cfg.cache_dir).expanduser()))
        timings["warm_start_s"] = time.perf_counter() - t0

        router = build_router(task.tools(), PoolOptions(**cfg.task.tools))
        run_id = run_id or new_run_id()
        if resume_from:
            from orchestrator.checkpoint import load_state

            run_id = load_state(Path(resume_from)).run_id
            log.info("resuming from %s (W&B run %s)", resume_from, run_id)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        resolved["output_dir"] = str(output_dir)
        resolved["tool_info"] = router.info()  # e.g. the sandbox's measured isolation, into the W&B config
        for name, info in resolved["tool_info"].items():
            isolation = info.get("isolation") or {}
            if isolation and not isolation.get("full", True):
                log.error("TOOL %s RUNS WITH WEAKER ISOLATION THAN FULL: %s", name, isolation)
        run_name = f"{cfg.experiment_name}-seed{cfg.seed}"
        loop_config = {"cfg": resolved, "model_path": model_path, "router": router, "run_id": run_id,
                       "run_name": run_name, "resume_from": resume_from}
        t0 = time.perf_counter()
        callbacks = []
        if report_to_tune:
            from ray.tune.integration.ray_train import TuneReportCallback

            callbacks.append(TuneReportCallback())
        try:
            result = fit(train_loop_per_worker, loop_config, cfg.trainer, output_dir / "ray", run_name, callbacks)
        finally:
            router.shutdown()  # also when the run failed: a retried sweep trial builds new ones
        timings["train_s"] = time.perf_counter() - t0
    finally:
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
