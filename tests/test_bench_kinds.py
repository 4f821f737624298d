"""bench/kinds.py: the per-kind table that compares runs (the calculator's before/after)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_run(folder: Path, mul_sampled: float, mul_greedy: float) -> None:
    folder.mkdir(parents=True)
    rows = [{"step": 0, "eval/accuracy": 0.3, "eval/accuracy_greedy": 0.0, "eval/by_kind/op/*": 0.1},
            {"step": 1, "env/reward_mean": 0.5},
            {"step": 2, "eval/accuracy": 0.9, "eval/accuracy_greedy": 0.95, "eval/by_kind/op/*": mul_sampled,
             "eval/by_kind_greedy/op/*": mul_greedy, "eval/by_kind/op/+": 1.0}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_runs_side_by_side_at_their_last_evaluation_and_a_sweep_averaged(tmp_path):
    write_run(tmp_path / "before", 0.8, 0.75)
    write_run(tmp_path / "sweep" / "trials" / "seed0", 0.9, 1.0)
    write_run(tmp_path / "sweep" / "trials" / "seed1", 1.0, 1.0)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "kinds.py"), f"before={tmp_path / 'before'}",
                          f"after={tmp_path / 'sweep'}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "| kind | before sampled | before greedy | after sampled | after greedy |"
    assert "| all | 0.900 | 0.950 | 0.900 | 0.950 |" in lines
    assert "| op/* | 0.800 | 0.750 | 0.950 | 1.000 |" in lines  # the last eval, and the sweep's mean
    assert "| op/+ | 1.000 | - | 1.000 | - |" in lines


def test_a_folder_without_metrics_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "kinds.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and str(tmp_path) in out.stderr and "metrics.jsonl" in out.stderr
