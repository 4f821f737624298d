"""Held-out accuracy per kind of problem, side by side for several runs (or sweeps).

    python bench/kinds.py before=/tmp/run_a after=outputs/bench/seeds_.../trials/seed3
    python bench/kinds.py outputs/bench/seeds_...           # a sweep: the mean over its trials

Reads each run's ``metrics.jsonl`` (a sweep folder: every ``trials/*/metrics.jsonl``, averaged)
and prints one markdown row per kind (``op/*``, ``operands/int*dec``, ``result_digits/4``...)
with its sampled and greedy accuracy at the run's last evaluation. The calculator's eval writes
these keys (``eval/by_kind/<kind>/<value>``); so would any task whose problems carry kinds.
Why a script: comparing a fix against the plateau it removes is a table of these numbers, and
the W&B panels show one run at a time.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

SAMPLED, GREEDY = "eval/by_kind/", "eval/by_kind_greedy/"


def last_eval(metrics: Path) -> dict[str, float]:
    """The last row of ``metrics`` that holds a held-out evaluation."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "eval/accuracy" in r]
    if not evals:
        raise SystemExit(f"{metrics}: no evaluation row (eval/accuracy) in it")
    return evals[-1]


def run_kinds(folder: Path) -> dict[str, float]:
    """Per-kind figures of one run, or the mean over a sweep's trials."""
    files = [folder / "metrics.jsonl"] if (folder / "metrics.jsonl").exists() else sorted(
        folder.glob("trials/*/metrics.jsonl"))
    if not files:
        raise SystemExit(f"{folder}: neither metrics.jsonl nor trials/*/metrics.jsonl")
    finals = [last_eval(f) for f in files]
    keys = {k for row in finals for k in row if k.startswith((SAMPLED, GREEDY))} | {"eval/accuracy", "eval/accuracy_greedy"}
    return {k: statistics.mean(row[k] for row in finals if k in row) for k in keys}


def table(runs: dict[str, dict[str, float]]) -> list[str]:
    kinds = sorted({k[len(SAMPLED):] for figures in runs.values() for k in figures if k.startswith(SAMPLED)})
    header = "| kind | " + " | ".join(f"{name} sampled | {name} greedy" for name in runs) + " |"
    lines = [header, "|---" * (1 + 2 * len(runs)) + "|"]
    rows = [("all", "eval/accuracy", "eval/accuracy_greedy")] + [(k, SAMPLED + k, GREEDY + k) for k in kinds]
    for label, sampled, greedy in rows:
        cells = []
        for figures in runs.values():
            cells += [f"{figures[sampled]:.3f}" if sampled in figures else "-",
                      f"{figures[greedy]:.3f}" if greedy in figures else "-"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    runs = {}
    for arg in argv:
        name, _, path = arg.rpartition("=") if "=" in arg else (Path(arg).name, "", arg)
        runs[name] = run_kinds(Path(path))
    print("\n".join(table(runs)))


if __name__ == "__main__":
    main(sys.argv[1:])
