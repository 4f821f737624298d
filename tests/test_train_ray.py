"""End-to-end runs on an embedded Ray cluster: a killed worker resumes from its checkpoint
exactly; trainer.resume continues a run from a storage URI. (PPO learning the calculator,
trainer.resume=latest and SFT on 1 and 2 workers: the README's commands in tests/test_readme.py;
two PPO workers in sync: tests/test_multinode.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.launch.experiment import run
from tests.conftest import WARM_START, make_cfg
from tests.faults import kill_override

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(autouse=True)
def shared_ray(local_ray):
    yield


def rows(output_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").read_text().splitlines()]


def wandb_run_ids(output_dir: str) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (Path(output_dir) / "wandb").glob("offline-run-*")}


NOISY = ("time/", "perf/")


def numbers(rows_: list[dict], steps: range) -> list[dict]:
    """The rows of ``steps`` without wall-clock figures."""
    return [{k: v for k, v in r.items() if not k.startswith(NOISY) and k != "time"} for r in rows_
            if r["step"] in steps and "env/reward_mean" in r]


def test_killed_worker_resumes_exactly_where_it_stopped(tmp_path, model_cache):
    """SIGKILL after the step-2 checkpoint: Ray Train restarts the worker, which resumes the same W&B
    run and produces the rows of an uninterrupted run with the same seed (optimizer, KL coefficient,
    RNG streams and data offset restored), bit for bit. Steps 1-2, before the kill, show that two
    runs of one seed give the same curve.

    The uninterrupted run keeps its checkpoints in a storage URI (pyarrow's file:// here; s3:// or
    gs:// on a cluster): nothing under its output_dir/ray, and trainer.resume takes the URI of its
    last checkpoint to continue its steps and its run."""
    common = [f"cache_dir={model_cache}", *WARM_START, "trainer.checkpoint_every=2", "trainer.eval_every=0",
              "trainer.final_eval_samples=1", "trainer.batch_size=16"]
    store = f"file://{tmp_path}/store"
    reference = str(tmp_path / "exp" / "reference")
    uninterrupted = run(make_cfg([*common, "trainer.max_steps=6", f"output_dir={reference}", "logger=none",
                                  f"trainer.storage={store}"]))
    assert uninterrupted["checkpoint"].startswith(str(tmp_path / "store")) and not (Path(reference) / "ray").exists()
    out = str(tmp_path / "kill")
    metrics = run(make_cfg([*common, "trainer.max_steps=6", f"output_dir={out}", "logger=wandb", kill_override(0, 3)]))
    assert metrics["step"] == 6
    steps = [r["step"] for r in rows(out) if "env/reward_mean" in r]
    assert steps == [1, 2, 3, 4, 5, 6], steps  # step 3 was redone once, nothing lost, nothing twice
    folders = list((Path(out) / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and wandb_run_ids(out) == {metrics["run_id"]}  # the kill happened; one W&B run
    assert numbers(rows(out), range(1, 3)) == numbers(rows(reference), range(1, 3))  # same seed, same curve
    assert numbers(rows(out), range(3, 7)) == numbers(rows(reference), range(3, 7))  # ... across the kill

    continued = str(tmp_path / "exp" / "continued")
    more = run(make_cfg([*common, "trainer.max_steps=8", f"output_dir={continued}", "logger=none",
                         f"trainer.resume=file://{uninterrupted['checkpoint']}"]))
    assert more["step"] == 8 and more["run_id"] == uninterrupted["run_id"]
    assert [r["step"] for r in rows(continued) if "env/reward_mean" in r] == [7, 8]
