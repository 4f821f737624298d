"""Sweeps: grid expansion, per-trial configs, the seed report. (A 2-seed sweep end to end:
tests/test_multinode.py; a sweep that survives faults: tests/test_sweep_faults.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.config import ConfigError
from orchestrator.launch.report import load_trials, summarize, tables, trial_identity
from orchestrator.launch.sweep import expand_grid, stable_run_id, trial_base, trial_config, trial_name
from tests.conftest import make_cfg


def test_expand_grid_crosses_every_value():
    grid = expand_grid({"algo": {"lr": [1e-5, 3e-5], "ppo_epochs": [2, 4]}})
    assert len(grid) == 4 and {"algo.lr": 3e-5, "algo.ppo_epochs": 2} in grid
    assert expand_grid({}) == [{}]
    with pytest.raises(ConfigError, match="sweep.params.algo.lr"):
        expand_grid({"algo": {"lr": 1e-5}})


def test_trial_config_changes_seed_everywhere(tmp_path):
    from orchestrator.config.checks import check
    from orchestrator.config.schema import RunConfig

    base = trial_base(make_cfg(["sweep=seeds"]))
    a = trial_config(base, 1, {"algo.lr": 3e-5}, str(tmp_path))
    assert isinstance(check(a, check_environment=False), RunConfig)  # typed, as the trial's run needs
    b = trial_config(base, 2, {"algo.lr": 3e-5}, str(tmp_path))
    assert a.seed == 1 and b.seed == 2
    assert a.model.tiny.seed is None  # null: the warm start follows the run seed (models/tiny.resolved_recipe)
    assert a.algo.lr == 3e-5 and a.sweep is None
    assert a.output_dir == str(tmp_path / "trials" / "seed1-lr=3e-05") and a.trainer.resume is None
    with pytest.raises(ConfigError, match="sweep.params.algo.nope"):
        trial_config(base, 1, {"algo.nope": 1}, str(tmp_path))


def test_a_trials_own_warm_start_fits_beside_the_coordinators(tmp_path):
    """A trial whose seed picks its own warm start builds it inside the trial, so its SFT
    workers must ask for the trial's share of the CPUs as the RL run does. Asking for all of
    them (2 here) waited forever on the sliver the trial's coordinator holds: found by
    ``bench/learn_calculator.py --seeds 10``, stuck at seed 1 (tests pin one warm start)."""
    from orchestrator.config.checks import check
    from orchestrator.launch.sweep import TRIAL_CPU
    from orchestrator.launch.warm_start import warm_start_run
    from orchestrator.models.tiny import resolved_recipe

    base = trial_base(make_cfg(["sweep=seeds", "sweep.max_concurrent_trials=1"]))
    typed = check(trial_config(base, 1, {}, str(tmp_path)), check_environment=False)
    recipe = resolved_recipe(typed.model.tiny, typed)
    _, in_sweep = warm_start_run(typed, recipe, tmp_path / "run", 2.0, sweep_trials=1)
    assert in_sweep.cpus_per_worker * typed.trainer.num_workers + TRIAL_CPU <= 2.0
    _, alone = warm_start_run(typed, recipe, tmp_path / "run", 2.0)
    assert alone.cpus_per_worker == 2.0  # a run on its own takes the machine


def test_trial_ids_are_stable_and_distinct(tmp_path):
    assert stable_run_id(str(tmp_path), "seed1") == stable_run_id(str(tmp_path), "seed1")
    assert stable_run_id(str(tmp_path), "seed1") != stable_run_id(str(tmp_path), "seed2")
    assert trial_name(0, {"algo.lr": 1e-5}) == "seed0-lr=1e-05"


def fake_sweep(root: Path) -> None:
    from orchestrator.launch.sweep import write_trial_file

    for seed, final in ((0, 0.9), (1, 0.7), (2, 0.8)):
        trial = root / "trials" / f"seed{seed}"
        write_trial_file(trial, seed, {})
        lines = [{"step": s, "env/reward_mean": final * s / 4, "objective/kl": 0.1 * s, "eval/accuracy": final * s / 4}
                 for s in range(5)]
        (trial / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 5, "env/rew')


def test_report_means_spreads_and_failures(tmp_path):
    fake_sweep(tmp_path)
    trials = load_trials(tmp_path)  # the cut last line is skipped, not fatal
    identities = {name: trial_identity(tmp_path, name) for name in [*trials, "seed3"]}
    assert identities["seed1"] == ("default", 1)  # read from trial.json, never parsed from the name
    per_trial, per_group = tables(trials, identities, ["eval/accuracy"], {"seed3": "RuntimeError: worker died"})
    assert [r[0] for r in per_trial[1:]] == ["seed0", "seed1", "seed2", "seed3"]
    assert per_trial[-1][-1] == "failed: RuntimeError: worker died"
    assert per_group[1][2] == "0.8000 ± 0.1000" and per_group[1][1] == "3"
    out = summarize(tmp_path, failures={"seed3": "RuntimeError: worker died"})
    assert Path(out["plot"]).stat().st_size > 10_000 and out["failed"] == 1
    assert "0.8000 ± 0.1000" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "summary.csv").read_text().count("\n") == 5


def test_report_command_on_a_folder(tmp_path):
    import subprocess
    import sys

    fake_sweep(tmp_path)
    out = subprocess.run([sys.executable, "-m", "orchestrator.launch.report", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and (tmp_path / "seeds.png").exists()
    bad = subprocess.run([sys.executable, "-m", "orchestrator.launch.report", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a sweep output folder" in bad.stderr


def test_a_finished_trial_is_not_trained_again(tmp_path):
    """A resumed sweep whose Tune state still says 'running' for a trial that had finished
    reports that trial's last checkpoint instead of training it again."""
    import torch

    from orchestrator.launch.sweep import finished_metrics

    base = trial_base(make_cfg(["sweep=seeds", "trainer.max_steps=3"]))
    assert finished_metrics(trial_config(base, 0, {}, str(tmp_path))) is None  # no checkpoint: train
    for step in (2, 3):
        folder = tmp_path / "trials" / "seed0" / "ray" / "run" / f"checkpoint_{step}"
        folder.mkdir(parents=True)
        torch.save({"step": step, "run_id": "abc", "algo": {}, "rng": {}, "metrics": {"eval/accuracy": step / 10}},
                   folder / "state.pt")
        cfg = trial_config(base, 0, {}, str(tmp_path))
        assert cfg.trainer.resume == str(folder)
        done = finished_metrics(cfg)
        assert done == (None if step < 3 else {"eval/accuracy": 0.3, "step": 3})


def test_resume_finds_the_sweep(tmp_path):
    from orchestrator.launch.sweep import resolve_sweep_dir

    for name in ("2024-01-01_00-00-00", "2024-01-02_00-00-00", "named"):
        (tmp_path / name / "tune").mkdir(parents=True)
    os.utime(tmp_path / "named", (0, 0))  # the oldest
    newest = tmp_path / "2024-01-02_00-00-00"
    os.utime(newest, (2e9, 2e9))
    resume = ["sweep=seeds", "sweep.resume=true"]
    assert resolve_sweep_dir(make_cfg([*resume, f"output_dir={tmp_path}/2024-05-05_00-00-00"])) == newest
    assert resolve_sweep_dir(make_cfg([*resume, f"output_dir={tmp_path}/named"])) == tmp_path / "named"
    assert resolve_sweep_dir(make_cfg(["sweep=seeds", f"output_dir={tmp_path}/new"])) == tmp_path / "new"
    with pytest.raises(ConfigError, match="no sweep"):
        resolve_sweep_dir(make_cfg([*resume, f"output_dir={tmp_path}/named/x/y"]))
