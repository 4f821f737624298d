"""The policy's starting weights: a hub model, or the tiny model built here and warm-started.

The tiny model's warm start is an SFT run like any other (``orchestrator.algos.sft`` in Ray
Train workers, one or more): the same loop, the same loss, the same checkpoints. Its result
is cached by a hash of its recipe (model config, SFT settings, the task's fingerprint, the
seed), so the second run with the same recipe starts at once. With ``algo=sft`` the run
itself is the SFT: it starts from the untrained tiny model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.config.derive import derive
from orchestrator.models.tiny import build_untrained, recipe_key, resolved_recipe
from orchestrator.task import Task

log = logging.getLogger("toolrl")


def starting_weights(cfg: Any, task: Task, console: Any, cpus: float, sweep_trials: int = 0) -> str:
    """What ``from_pretrained`` loads in the workers: a hub name or a local folder.

    ``sweep_trials``: the trials sharing the cluster when this run is one of a sweep's. A trial
    that builds its own warm start (the seed picks it) must ask for the trial's share of the
    CPUs, as its RL run does; asking for the whole cluster waits forever on the CPUs the
    trials' coordinators hold."""
    if cfg.model.source == "hub":
        return str(cfg.model.pretrained)
    recipe = resolved_recipe(cfg.model.tiny, cfg)
    cache = Path(cfg.cache_dir).expanduser()
    from orchestrator.algos import ALGORITHMS

    if ALGORITHMS[cfg.algo.name].learns_from == "demonstrations":
        return str(_cached(cache / f"tiny-untrained-{recipe_key(recipe, task, trained=False)}",
                           lambda folder: _build_base(recipe, task, cfg.cache_dir, console).save(folder)))
    target = cache / f"tiny-{task.name}-{recipe_key(recipe, task, trained=True)}"
    if (target / "recipe.json").exists():
        log.info("tiny model: warm start cached at %s", target)
        return str(target)
    log.info("tiny model: warm start (SFT, %d steps on %d worker(s)) -> %s", recipe.sft_steps,
             cfg.trainer.num_workers, target)
    return str(_cached(target, lambda folder: _warm_start(cfg, recipe, task, console, cpus, sweep_trials, folder)))


def _build_base(recipe: Any, task: Task, cache_dir: str, console: Any) -> Any:
    """The model SFT starts from, with a progress bar over its copy pretraining where it has one."""
    if not recipe.copy_steps:
        return build_untrained(recipe, task, cache_dir)
    log.info("tiny model: copy pretraining, %d steps (orchestrator/models/copying.py)", recipe.copy_steps)
    start = time.perf_counter()
    bar = console.progress("copy pretraining", recipe.copy_steps) if console is not None else None
    base = build_untrained(recipe, task, cache_dir, on_copy_step=bar.advance if bar is not None else None)
    log.info("tiny model: copy pretraining done in %.0f s", time.perf_counter() - start)
    return base


def _cached(target: Path, build: Any) -> Path:
    """Build into a staging folder beside ``target`` and move it in place at once: concurrent
    builders of one recipe (a sweep's trials) cannot mix files; the first to finish wins."""
    if (target / "recipe.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        try:
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race; its copy is equal
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def warm_start_config(cfg: Any, recipe: Any, output_dir: Path) -> Any:
    """The run config of the warm start: ``algo=sft`` with the recipe's settings, same workers."""
    from orchestrator.algos.sft import SFTConfig

    algo = SFTConfig(name="sft", lr=recipe.sft_lr, warmup_steps=recipe.sft_warmup_steps, lr_schedule="cosine",
                     weight_decay=0.0, max_grad_norm=1.0, minibatch_size=None, num_demos=recipe.sft_demos)
    trainer = dataclasses.replace(cfg.trainer, max_steps=recipe.sft_steps, batch_size=recipe.sft_batch_size,
                                  eval_every=0, checkpoint_every=0, keep_checkpoints=1, resume=None, callbacks=[])
    logger = dataclasses.replace(cfg.logger, name="none")
    return dataclasses.replace(cfg, algo=algo, trainer=trainer, logger=logger, output_dir=str(output_dir),
                               seed=recipe.seed, sweep=None)


def warm_start_run(cfg: Any, recipe: Any, run_dir: Path, cpus: float, sweep_trials: int = 0) -> tuple[Any, Any]:
    """The warm start's config and derived numbers (workers' CPUs: the same share as the run's)."""
    warm_cfg = warm_start_config(cfg, recipe, run_dir)
    return warm_cfg, derive(warm_cfg, cpus, sweep_trials)


def _warm_start(cfg: Any, recipe: Any, task: Task, console: Any, cpus: float, sweep_trials: int,
                folder: Path) -> None:
    from orchestrator.launch.ray_cluster import storage_path
    from orchestrator.launch.train_run import fit
    from orchestrator.worker.loop import WorkerPayload, train_worker

    start = time.perf_counter()
    untrained = folder / "untrained"
    _build_base(recipe, task, cfg.cache_dir, console).save(untrained)
    run_dir = folder / "run"
    warm_cfg, derived = warm_start_run(cfg, recipe, run_dir, cpus, sweep_trials)
    payload = WorkerPayload(cfg=warm_cfg, derived=derived, model_path=str(untrained), router=None, run_id="warmstart",
                            run_name="warm-start", resume_from=None, console=console, warm_start=True)
    result = fit(train_worker, payload, warm_cfg.trainer, derived, storage_path(str(run_dir)), "warm-start")
    if result.error:
        raise RuntimeError(f"the tiny model's warm start failed: {result.error}") from result.error
    result.checkpoint.to_directory(str(folder / "final"))
    for item in (folder / "final" / "model").iterdir():
        shutil.move(str(item), folder / item.name)
    shutil.rmtree(folder / "final", ignore_errors=True)
    shutil.rmtree(untrained, ignore_errors=True)
    shutil.rmtree(run_dir / "ray", ignore_errors=True)
    (folder / "recipe.json").write_text(json.dumps(
        {"recipe": dataclasses.asdict(recipe), "task": task.fingerprint(), "workers": cfg.trainer.num_workers,
         "build_seconds": round(time.perf_counter() - start, 1), "final": result.metrics}, indent=1, default=str))
    log.info("tiny model: warm start done in %.0f s (loss %.3f)", time.perf_counter() - start,
             (result.metrics or {}).get("sft/loss", float("nan")))
