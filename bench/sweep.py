"""What does a Tune sweep cost and save against the same runs one after another?

    python bench/sweep.py [--seeds 4] [--concurrent 2] [extra Hydra overrides...]

Runs the same ``--seeds`` calculator runs twice, in this process, each time on a fresh embedded
Ray cluster of this machine's cores: first one after another (``experiment.run`` per seed),
then as one sweep (``sweep=seeds``, ``--concurrent`` trials at once). Same settings both times
(small: 5 PPO steps, 64 held-out problems, W&B off, one shared warm start, built before timing).
Prints the wall time of each way, their ratio, and Tune's overhead per trial.

Tune's overhead per trial is measured, not inferred from the ratio: for every run, the time
outside its own ``experiment.run`` work is the time from "asked to start" to its ``config.yaml``
(the first thing ``run`` writes) plus the time from its last metrics row to "done". For a
sweep trial "asked/done" are Tune's trial start and completion (a Tune callback); for a single
run they are the call and return of ``run``. The difference of the means is what Tune adds.
Appends the figures to bench/RESULTS.md with the date, the machine and its load.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402

SETTINGS = ["task=calculator", "logger=none", "trainer.max_steps=5", "trainer.eval_every=0",
            "task.spec.num_eval=64", "model.tiny.seed=0"]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from orchestrator.config import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def outside_time(folder: Path, asked: float, done: float) -> float:
    """Seconds of [asked, done] spent before run() wrote config.yaml or after the last metrics row."""
    start = (folder / "config.yaml").stat().st_mtime
    end = (folder / "metrics.jsonl").stat().st_mtime
    return (start - asked) + (done - end)


def sequential(seeds: list[int], root: Path, overrides: list[str]) -> tuple[float, list[float]]:
    import ray

    from orchestrator.launch.experiment import run

    started = time.time()
    ray.init(include_dashboard=False, logging_level="WARNING")
    outside = []
    try:
        for seed in seeds:
            folder = root / f"seed{seed}"
            asked = time.time()
            run(compose([*SETTINGS, *overrides, f"seed={seed}", f"output_dir={folder}"]))
            outside.append(outside_time(folder, asked, time.time()))
    finally:
        ray.shutdown()
    return time.time() - started, outside


def swept(seeds: list[int], concurrent: int, root: Path, overrides: list[str]) -> tuple[float, list[float]]:
    import ray
    from ray import tune

    from orchestrator.launch.sweep import run_sweep

    class TrialTimes(tune.Callback):
        def __init__(self) -> None:
            self.asked: dict[int, float] = {}
            self.done: dict[int, float] = {}

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self.asked[trial.config["seed"]] = time.time()

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.done[trial.config["seed"]] = time.time()

    times = TrialTimes()
    started = time.time()
    ray.init(include_dashboard=False, logging_level="WARNING")
    try:
        summary = run_sweep(compose([*SETTINGS, *overrides, "sweep=seeds", f"sweep.num_seeds={len(seeds)}",
                                     f"sweep.start_seed={seeds[0]}", f"sweep.max_concurrent_trials={concurrent}",
                                     f"output_dir={root}"]), callbacks=[times])
    finally:
        ray.shutdown()
    wall = time.time() - started
    if summary["failed"]:
        raise SystemExit(f"{summary['failed']} trial(s) failed; see {root}/summary.md")
    outside = [outside_time(root / "trials" / f"seed{s}", times.asked[s], times.done[s]) for s in seeds]
    return wall, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--concurrent", type=int, default=2)
    args, overrides = parser.parse_known_args()
    seeds = list(range(args.seeds))
    root = REPO / "outputs" / "bench" / datetime.datetime.now().strftime("sweep_%Y%m%d_%H%M%S")

    # the shared warm start, built (or found in the cache) before anything is timed
    import hydra.utils

    from orchestrator.models.loading import prepare_model

    cfg = compose([*SETTINGS, *overrides])
    prepare_model(cfg.model, hydra.utils.instantiate(cfg.task.spec), str(Path(cfg.cache_dir).expanduser()))

    load_before = os.getloadavg()[0]
    seq_wall, seq_outside = sequential(seeds, root / "sequential", overrides)
    load_between = os.getloadavg()[0]
    sweep_wall, sweep_outside = swept(seeds, args.concurrent, root / "sweep", overrides)
    load_after = os.getloadavg()[0]

    overhead = statistics.mean(sweep_outside) - statistics.mean(seq_outside)
    lines = [
        f"{len(seeds)} runs one after another: {seq_wall:.1f} s ({seq_wall / len(seeds):.1f} s per run, Ray start included)",
        f"sweep of {len(seeds)} seeds, {args.concurrent} at once: {sweep_wall:.1f} s",
        f"ratio sweep / one after another: {sweep_wall / seq_wall:.2f} ({seq_wall / sweep_wall:.2f}x faster)",
        f"time outside a run's own work, mean per run: single {statistics.mean(seq_outside):.2f} s, "
        f"sweep trial {statistics.mean(sweep_outside):.2f} s",
        f"Tune's overhead per trial: {overhead:.2f} s",
        f"1-minute load average: {load_before:.1f} before, {load_between:.1f} between the two, {load_after:.1f} after"
        " (on a shared machine the ratio means something only if these stay near the core count)",
    ]
    print("\n".join(lines))
    results = REPO / "bench" / "RESULTS.md"
    with results.open("a") as f:
        f.write(f"\n### sweep — {datetime.date.today()} — {machine()}\n")
        f.write(f"command: `python bench/sweep.py --seeds {args.seeds} --concurrent {args.concurrent}"
                f"{' ' + ' '.join(overrides) if overrides else ''}`; settings: `{' '.join(SETTINGS)}`\n\n")
        f.writelines(f"- {line}\n" for line in lines)


if __name__ == "__main__":
    main()
