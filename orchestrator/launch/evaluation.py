"""``mode=eval``: a task's own evaluation run (ToolBench: DFSDT or ReAct over a query set, then a
judge), with the same checks, Ray start, logging and tracking as a training run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from orchestrator.config.checks import check
from orchestrator.launch.ray_cluster import init_ray
from orchestrator.task import build_task
from orchestrator.tracking.console import route_driver_logs
from orchestrator.tracking.tracker import Tracker, new_run_id

log = logging.getLogger("toolrl")


@dataclass
class EvalContext:
    """What a task's evaluation run gets."""

    cfg: Any  # the typed RunConfig
    output_dir: Path
    # What from_pretrained loads: model.pretrained (a hub name, or a checkpoint's model/ folder).
    model_path: str | None
    seed: int


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    typed = check(cfg)
    output_dir = Path(typed.output_dir).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    route_driver_logs(output_dir / "logs" / "driver.log")
    t0 = time.perf_counter()
    started = init_ray(typed.ray)
    try:
        task = build_task(typed.task)
        model_path = typed.model.pretrained if typed.model.source == "hub" else None
        tracker = Tracker(typed.logger, output_dir, new_run_id(), f"{typed.experiment_name}-eval-seed{typed.seed}",
                          typed.experiment_name, OmegaConf.to_container(cfg, resolve=True))
        metrics = task.run_evaluation(EvalContext(typed, output_dir, model_path, typed.seed))
        tracker.log(metrics, 0)
        tracker.summary(metrics)
        tracker.finish()
    finally:
        if started:
            import ray

            ray.shutdown()
    return {**metrics, "time/eval_run_s": time.perf_counter() - t0, "output_dir": str(output_dir)}
