"""How fast does the default experiment learn, and where does the time go?

    python bench/learn_calculator.py [extra Hydra overrides...]

Runs ``python -m orchestrator task=calculator`` (embedded Ray, tiny model, W&B off) in
process and prints: the warm-start eval accuracy, the PPO step and wall seconds (after the
warm start) at which eval accuracy first reached 0.9, the final accuracy, the split of wall
time, and tokens/s. Appends the figures to bench/RESULTS.md with the machine they came from.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402


def main(overrides: list[str]) -> None:
    from hydra import compose, initialize_config_dir

    from orchestrator.config import CONF_DIR
    from orchestrator.launch.experiment import run

    out = REPO / "outputs" / "bench" / datetime.datetime.now().strftime("learn_%Y%m%d_%H%M%S")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["task=calculator", "logger=none", f"output_dir={out}", *overrides])
    started = time.perf_counter()
    metrics = run(cfg)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/accuracy" in r]
    baseline = evals[0]
    reached = next((r for r in evals if r["eval/accuracy"] >= 0.9), None)
    totals = next((r for r in reversed(rows) if "time/total_rollout_s" in r), {})
    steps = [r for r in rows if "perf/tokens_per_s" in r]
    tokens_per_s = sum(r["perf/tokens_per_s"] for r in steps) / max(len(steps), 1)

    lines = [
        f"warm-start eval accuracy (sampled / greedy): {baseline['eval/accuracy']:.3f} / {baseline['eval/accuracy_greedy']:.3f}",
        (f"eval accuracy >= 0.9 first at step {reached['step']}, {reached['time']:.1f} s after the warm start"
         if reached else "eval accuracy never reached 0.9"),
        f"final eval accuracy (sampled / greedy): {metrics['eval/accuracy']:.3f} / {metrics['eval/accuracy_greedy']:.3f} after {metrics['step']} steps",
        f"wall time: total {wall:.1f} s = Ray start {metrics['time/ray_start_s']:.1f} + warm start {metrics['time/warm_start_s']:.1f}"
        f" + Ray Train run {metrics['time/train_s']:.1f}",
        "inside the run: " + ", ".join(f"{k.split('_')[1]} {v:.1f} s" for k, v in totals.items() if k.startswith("time/total_")),
        f"rollout throughput: {tokens_per_s:.0f} generated tokens/s",
    ]
    print("\n".join(lines))
    results = REPO / "bench" / "RESULTS.md"
    with results.open("a") as f:
        f.write(f"\n### learn_calculator — {datetime.date.today()} — {machine()}\n")
        f.write(f"overrides: `{' '.join(overrides) or '(defaults)'}`\n\n")
        f.writelines(f"- {line}\n" for line in lines)


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    main(sys.argv[1:])
