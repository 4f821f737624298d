"""Sweeps survive faults, both in one sweep (each fault costs a Ray Train start, so they share
one): a failed trial is retried from its checkpoint (``sweep.max_failures``), and a sweep whose
driver was SIGKILLed is finished by the same command with ``sweep.resume=true`` without rerunning
finished trials or losing reported results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, WARM_START
from tests.faults import kill_override

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def steps(trial_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["step"] for r in rows if "env/reward_mean" in r]


def wandb_runs(trial_dir: Path) -> list[str]:
    """One folder per W&B process that ran (offline-run-<time>-<id>): a resumed run adds one."""
    return sorted(p.name for p in (trial_dir / "wandb").glob("offline-run-*"))


def tune_reports(sweep_dir: Path, seed: int) -> list[dict]:
    """What the trial reported to Tune, from Tune's own result.json."""
    [trial] = (sweep_dir / "tune").glob(f"run_trial_*seed={seed}_*")
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (by parent links in /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


STEPS = 10


def test_killed_driver_resumes_the_sweep(tmp_path, model_cache):
    """Two faults in one 2-seed sweep, one trial at a time.

    A failed trial: seed 0's Train worker is SIGKILLed at step 3 of an attempt that did not resume,
    and Train may not restart it (trainer.max_failures=0), so the trial fails; Tune retries it once
    (sweep.max_failures=1) and the retry resumes from the step-2 checkpoint.

    A killed driver: the driver (its own local Ray) is SIGKILLed with its process group once seed 0
    finished and seed 1 is under way; the same command with sweep.resume=true finishes seed 1 from
    its checkpoint and leaves seed 0 alone. Seed 1 has STEPS steps so that the kill, which waits
    for its first step, still lands before its last on a fast machine (a CI run once saw all 3
    done); small batches keep them cheap (a step of 16 episodes and its checkpoint take ~0.5 s
    here).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "orchestrator", "task=calculator", "sweep=seeds", "sweep.num_seeds=2",
               "sweep.max_concurrent_trials=1", f"trainer.max_steps={STEPS}", "trainer.checkpoint_every=1",
               "trainer.eval_every=0", "trainer.final_eval_samples=1", "trainer.batch_size=16", *WARM_START,
               "ray.num_cpus=2",
               "logger=wandb", "sweep.max_failures=1", "trainer.max_failures=0", kill_override(0, 3, seed=0),
               f"cache_dir={model_cache}"]
    exp = tmp_path / "exp"
    sweep = exp / "first"
    trials = sweep / "trials"
    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen([*command, f"output_dir={sweep}"], cwd=REPO, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and driver.poll() is None:
            seed0 = trials / "seed0" / "metrics.jsonl"
            seed1 = trials / "seed1" / "metrics.jsonl"
            if seed0.exists() and "time/total_rollout_s" in seed0.read_text() and seed1.exists() and steps(seed1.parent):
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the sweep ended before it could be killed:\n" + (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "seed 1 never started:\n" + (tmp_path / "first.log").read_text()[-3000:]
        started = descendants(driver.pid)  # Ray's processes, Tune and Train actors, tool actors
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
    deadline = time.monotonic() + 30
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(started), f"processes of the killed driver still run: {alive(started)}"

    seed0_rows = (trials / "seed0" / "metrics.jsonl").read_text()
    seed0_runs = wandb_runs(trials / "seed0")
    seed1_before = steps(trials / "seed1")
    assert steps(trials / "seed0") == list(range(1, STEPS + 1)) and 1 <= len(seed1_before) < STEPS, seed1_before
    assert not (sweep / "summary.md").exists()
    # seed 0 failed at step 3 and its retry went on from the step-2 checkpoint: step 3 logged once
    # (above), the failed attempt and the retry in one W&B run, nothing reported to Tune twice
    assert len(seed0_runs) == 2 and len({r.rsplit("-", 1)[-1] for r in seed0_runs}) == 1, seed0_runs
    assert "KillRankAtStep: SIGKILL at step 3" in (trials / "seed0" / "logs" / "worker-0.log").read_text()
    reported = [r["step"] for r in tune_reports(sweep, 0)]
    assert reported[-1] == STEPS and reported == sorted(set(reported)), reported

    with open(tmp_path / "resume.log", "w") as log:
        resumed = subprocess.run([*command, f"output_dir={exp}/second", "sweep.resume=true"], cwd=REPO, env=env,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True, timeout=500)
    text = (tmp_path / "resume.log").read_text()
    assert resumed.returncode == 0, text[-3000:]
    assert not (exp / "second" / "trials").exists()  # it worked in the killed sweep's folder (Hydra logs aside)
    assert "resuming" in text
    # Tune restored its own state (a trial config holding an actor handle once made it give up and
    # start every trial anew, in new trial folders)
    assert "Failed to restore" not in (sweep / "logs" / "driver.log").read_text()
    # seed 0 was not trained again: same rows, no new W&B process
    assert (trials / "seed0" / "metrics.jsonl").read_text() == seed0_rows
    assert wandb_runs(trials / "seed0") == seed0_runs
    # seed 1 went on from its checkpoint: every step once, one W&B run
    assert steps(trials / "seed1") == list(range(1, STEPS + 1))
    assert len({r.rsplit("-", 1)[-1] for r in wandb_runs(trials / "seed1")}) == 1
    # nothing reported is lost: metrics.jsonl and W&B hold every step (above), Tune the final step of
    # both trials, the summary both rows
    for seed in (0, 1):
        assert tune_reports(sweep, seed)[-1]["step"] == STEPS
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in summary[1:]] == ["seed0", "seed1"]
    assert all(line.endswith(",ok") and f",{STEPS}," in line for line in summary[1:]), summary
