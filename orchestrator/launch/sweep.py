"""Ray Tune sweeps: seeds x a hyperparameter grid, one Ray Train run per trial.

Each trial is a function trainable that starts its own TorchTrainer (Train V2 style) and
forwards Train's reports to Tune. Trial folders and W&B run ids are derived from the
sweep folder and the trial's settings, so a retried trial (``sweep.max_failures``) and a
sweep resumed after the driver died (``sweep.resume=true``) continue from the trial's
last checkpoint, in the same W&B run. Tune does not aggregate over seeds; the summary
(:mod:`orchestrator.launch.report`) does, at the end of the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import pickle
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from orchestrator.config.checks import ConfigError, check
from orchestrator.worker.checkpoint import find_latest, load_state

log = logging.getLogger("toolrl")

TUNE_DIR = "tune"
# Each trial's folder records which seed and grid point it is (read by the report; never parsed from names).
TRIAL_FILE = "trial.json"
# CPUs a trial's coordinator reserves: it only waits on its TorchTrainer, but Tune needs a non-empty request.
TRIAL_CPU = 0.01


def expand_grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """{"algo.lr": [1, 2], "algo.ppo_epochs": [4]} -> [{"algo.lr": 1, ...}, {"algo.lr": 2, ...}]."""
    flat = _flatten(params)
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.params.{key}: expected a non-empty list of values, got {values!r}")
    keys = sorted(flat)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(flat[k] for k in keys))] or [{}]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out
    return {prefix.rstrip("."): node}


def trial_name(seed: int, overrides: dict[str, Any]) -> str:
    parts = [f"seed{seed}"] + [f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items())]
    return "-".join(parts).replace("/", "_")


def stable_run_id(sweep_dir: str, name: str) -> str:
    """The same trial of the same sweep always logs to the same W&B run."""
    digest = hashlib.sha256(f"{Path(sweep_dir).resolve()}::{name}".encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % 36] for i in range(0, 16, 2))


def trial_base(cfg: DictConfig) -> bytes:
    """What every trial starts from: the composed config without its sweep, pickled as OmegaConf.
    A plain dict would lose the typed schema (RunConfig, the task's spec): the trial could
    neither check nor run it."""
    base = cfg.copy()
    with open_dict(base):
        base.sweep = None
    return pickle.dumps(base)


def trial_config(base: bytes | dict[str, Any], seed: int, overrides: dict[str, Any], sweep_dir: str) -> DictConfig:
    """The composed config of one trial: the base with its seed, grid values and folder."""
    import hydra.core.utils  # noqa: F401 - registers Hydra's `now` resolver in this process

    cfg = pickle.loads(base) if isinstance(base, bytes) else OmegaConf.create(base)
    OmegaConf.set_struct(cfg, False)
    cfg.seed = seed
    for key, value in overrides.items():
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"sweep.params.{key}: no such key in the config")
        OmegaConf.update(cfg, key, value, merge=False)
    name = trial_name(seed, overrides)
    cfg.output_dir = str(Path(sweep_dir) / "trials" / name)
    if cfg.trainer.storage:  # one folder per trial in shared storage (run names repeat across grid points)
        cfg.trainer.storage = f"{str(cfg.trainer.storage).rstrip('/')}/{Path(sweep_dir).name}/{name}"
    cfg.sweep = None
    latest = find_latest(Path(cfg.output_dir))
    cfg.trainer.resume = str(latest) if latest else None
    OmegaConf.set_struct(cfg, True)
    return cfg


def write_trial_file(folder: Path, seed: int, overrides: dict[str, Any]) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRIAL_FILE).write_text(json.dumps({"seed": seed, "overrides": overrides}, sort_keys=True))


def finished_metrics(cfg: DictConfig) -> dict[str, Any] | None:
    """The final report of a trial whose folder already holds its last checkpoint, else None.

    Tune saves its own state every few seconds at most, so a driver killed just after a trial
    finished leaves that trial marked as running; a resumed sweep would start it again.
    """
    if not cfg.trainer.resume:
        return None
    state = load_state(Path(cfg.trainer.resume))
    if state.step < cfg.trainer.max_steps:
        return None
    return {**state.metrics, "step": state.step}


def run_trial(config: dict[str, Any], console: Any = None) -> None:
    """Tune's function trainable: one Ray Train run (none when the trial already finished).

    ``console``: the driver's :class:`ConsoleChannel`, given through ``tune.with_parameters`` and
    never through the trial's config: Tune saves the config in its experiment state, and a
    resumed sweep could not load the dead driver's actor handle back (Tune then gave up the
    restore and started every trial anew)."""
    from ray import tune

    from orchestrator.launch.experiment import run

    cfg = trial_config(config["base"], config["seed"], config["overrides"], config["sweep_dir"])
    name = trial_name(config["seed"], config["overrides"])
    write_trial_file(Path(cfg.output_dir), config["seed"], config["overrides"])
    done = finished_metrics(cfg)
    if done is not None:
        log.info("trial %s finished before (step %d, %s): reporting its final metrics, not training again",
                 name, done["step"], cfg.trainer.resume)
        tune.report(done)
        return
    console = console.with_prefix(name) if console is not None else None
    run(cfg, run_id=stable_run_id(config["sweep_dir"], name), report_to_tune=True, console=console,
        sweep_trials=config["trials_at_once"])


def resolve_sweep_dir(cfg: DictConfig) -> Path:
    """``output_dir``; with ``sweep.resume``, that folder when it holds a sweep (an output_dir
    given by hand), else the newest sweep beside it (the default, timestamped output_dir)."""
    out = Path(cfg.output_dir).expanduser().resolve()
    if not cfg.sweep.resume or (out / TUNE_DIR).is_dir():
        return out
    root = out.parent
    found = sorted((p.parent for p in root.glob(f"*/{TUNE_DIR}")), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"sweep.resume=true: no sweep (a folder with {TUNE_DIR}/) under {root}")
    return found[-1]


def run_sweep(cfg: DictConfig, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run every (seed, grid point) trial on Ray Tune; return the summary's figures.

    ``callbacks``: Tune callbacks (e.g. bench/sweep.py's trial timer); kept only for this call.
    """
    from ray import tune

    from orchestrator.launch.ray_cluster import init_ray
    from orchestrator.launch.report import summarize
    from orchestrator.tracking.console import ConsoleChannel, ConsolePrinter, route_driver_logs

    check(cfg)
    sweep = cfg.sweep
    grid = expand_grid(OmegaConf.to_container(sweep.params, resolve=True))
    seeds = list(range(sweep.start_seed, sweep.start_seed + sweep.num_seeds))
    sweep_dir = resolve_sweep_dir(cfg)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    base = trial_base(cfg)

    route_driver_logs(sweep_dir / "logs" / "driver.log")
    started_ray = init_ray(cfg.ray)
    channel = ConsoleChannel()
    printer = ConsolePrinter(channel).__enter__()
    try:
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = cfg.trainer.num_workers
        concurrent = sweep.max_concurrent_trials or max(1, cpus // workers)
        log.info("sweep: %d seeds x %d grid points, %d at once, in %s", len(seeds), len(grid), concurrent, sweep_dir)
        trainable = tune.with_resources(tune.with_parameters(run_trial, console=channel), {"CPU": TRIAL_CPU})
        tune_path = sweep_dir / TUNE_DIR
        space = {
            "seed": tune.grid_search(seeds),
            "overrides": tune.grid_search(grid),
            "base": base,
            "sweep_dir": str(sweep_dir),
            "trials_at_once": concurrent,
        }
        if sweep.resume and tune.Tuner.can_restore(str(tune_path)):
            log.info("sweep: resuming %s (finished trials are kept)", tune_path)
            tuner = tune.Tuner.restore(str(tune_path), trainable, resume_errored=True, param_space=space)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=space,
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=str(sweep_dir),
                    failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                    callbacks=callbacks,
                    verbose=0,
                ),
            )
        results = tuner.fit()
        failures = {}
        for result in results:
            if result.error is not None:
                name = trial_name(result.config["seed"], result.config["overrides"])
                failures[name] = f"{type(result.error).__name__}: {str(result.error).splitlines()[0][:300]}"
    finally:
        printer.stop()
        channel.shutdown()
        if started_ray:
            import ray

            ray.shutdown()
    return summarize(sweep_dir, list(sweep.plot_metrics), failures, logger_cfg=cfg.logger,
                     group=cfg.experiment_name)
