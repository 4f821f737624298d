"""How fast does the default experiment learn, and how does it do over seeds?

    python bench/learn_calculator.py [extra Hydra overrides...]             # one run (seed 0)
    python bench/learn_calculator.py --seeds 10 [extra Hydra overrides...]  # a 10-seed Tune sweep

One run: ``python -m orchestrator task=calculator`` in process (embedded Ray, tiny model, W&B
off); prints the warm start's accuracy, the step and seconds at which held-out accuracy first
reached 0.9, the final accuracy, the split of wall time and tokens/s.

``--seeds N``: the same run as a Tune sweep over seeds 0..N-1, one trial at a time (as a user's
default run has the machine to itself; each seed has its own warm start), then per seed: final
sampled and greedy accuracy, time to 0.9 (seconds of the RL run), the weakest kinds of problem;
the sweep's seeds.png is copied next to this script's figures. Both modes append their figures
to bench/RESULTS.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402


def summarize_run(rows: list[dict]) -> dict:
    evals = [r for r in rows if "eval/accuracy" in r]
    reached = next((r for r in evals if r["eval/accuracy"] >= 0.9), None)
    last = evals[-1]
    kinds = {k.split("/", 2)[2]: v for k, v in last.items() if k.startswith("eval/by_kind/")}
    weakest = sorted(kinds.items(), key=lambda kv: kv[1])[:2]
    totals = next((r for r in reversed(rows) if "time/total_rollout_s" in r), {})
    return {"start": evals[0]["eval/accuracy"], "start_greedy": evals[0]["eval/accuracy_greedy"],
            "final": last["eval/accuracy"], "final_greedy": last["eval/accuracy_greedy"], "steps": last["step"],
            "to_0.9_step": reached["step"] if reached else None, "to_0.9_s": reached["time"] if reached else None,
            "weakest": ", ".join(f"{k} {v:.2f}" for k, v in weakest), "totals": totals,
            "rl_s": rows[-1]["time"]}


def one_run(overrides: list[str]) -> list[str]:
    from orchestrator.config import compose_config
    from orchestrator.launch.experiment import run

    out = REPO / "outputs" / "bench" / datetime.datetime.now().strftime("learn_%Y%m%d_%H%M%S")
    cfg = compose_config(["task=calculator", "logger=none", f"output_dir={out}", *overrides])
    started = time.perf_counter()
    metrics = run(cfg)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    s = summarize_run(rows)
    tokens = [r["perf/tokens_per_s"] for r in rows if "perf/tokens_per_s" in r]
    return [
        f"warm-start eval accuracy (sampled / greedy): {s['start']:.3f} / {s['start_greedy']:.3f}",
        (f"eval accuracy >= 0.9 first at step {s['to_0.9_step']}, {s['to_0.9_s']:.1f} s after the warm start"
         if s["to_0.9_step"] is not None else "eval accuracy never reached 0.9"),
        f"final eval accuracy (sampled / greedy): {s['final']:.3f} / {s['final_greedy']:.3f} after {s['steps']} steps;"
        f" weakest kinds: {s['weakest']}",
        f"wall time: total {wall:.1f} s = Ray start {metrics['time/ray_start_s']:.1f} + warm start "
        f"{metrics['time/warm_start_s']:.1f} + Ray Train run {metrics['time/train_s']:.1f}",
        "inside the run: " + ", ".join(f"{k.split('_')[1]} {v:.1f} s" for k, v in s["totals"].items()
                                       if k.startswith("time/total_")),
        f"rollout throughput: {sum(tokens) / max(len(tokens), 1):.0f} generated tokens/s",
    ]


def seed_sweep(n: int, overrides: list[str]) -> list[str]:
    from orchestrator.config import compose_config
    from orchestrator.launch.sweep import run_sweep

    out = REPO / "outputs" / "bench" / datetime.datetime.now().strftime("seeds_%Y%m%d_%H%M%S")
    cfg = compose_config(["task=calculator", "logger=none", f"output_dir={out}", "sweep=seeds",
                          f"sweep.num_seeds={n}", "sweep.max_concurrent_trials=1", *overrides])
    started = time.perf_counter()
    run_sweep(cfg)
    wall = time.perf_counter() - started
    table = ["| seed | start sampled / greedy | final sampled | final greedy | RL s to 0.9 | RL run s | weakest kinds |",
             "|---|---|---|---|---|---|---|"]
    finals, greedies = [], []
    for seed in range(n):
        rows = [json.loads(line) for line in (out / "trials" / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()
                if line.strip()]
        s = summarize_run(rows)
        finals.append(s["final"])
        greedies.append(s["final_greedy"])
        reach = f"{s['to_0.9_s']:.0f}" if s["to_0.9_s"] is not None else "never"
        table.append(f"| {seed} | {s['start']:.3f} / {s['start_greedy']:.3f} | {s['final']:.3f} | {s['final_greedy']:.3f} "
                     f"| {reach} | {s['rl_s']:.0f} | {s['weakest']} |")
    plot = REPO / "bench" / "learn_calculator_seeds.png"
    shutil.copy(out / "seeds.png", plot)
    lines = table + [
        "",
        f"sampled: mean {statistics.mean(finals):.3f}, min {min(finals):.3f}; seeds >= 0.95: "
        f"{sum(f >= 0.95 for f in finals)}/{n}",
        f"greedy: mean {statistics.mean(greedies):.3f}, min {min(greedies):.3f}; seeds >= 0.99: "
        f"{sum(g >= 0.99 for g in greedies)}/{n}",
        f"sweep wall time {wall / 60:.1f} min ({wall / n / 60:.1f} min per seed, warm start included); plot: "
        f"bench/{plot.name}; sweep folder: {out.relative_to(REPO)}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--seeds", type=int, default=0, help="run a Tune sweep over this many seeds")
    args, overrides = parser.parse_known_args()
    lines = seed_sweep(args.seeds, overrides) if args.seeds else one_run(overrides)
    print("\n".join(lines))
    title = f"learn_calculator --seeds {args.seeds}" if args.seeds else "learn_calculator"
    with (REPO / "bench" / "RESULTS.md").open("a") as f:
        f.write(f"\n### {title} — {datetime.date.today()} — {machine()}\n")
        f.write(f"overrides: `{' '.join(overrides) or '(defaults)'}`\n\n")
        f.writelines(f"{line}\n" if line.startswith("|") else f"- {line}\n" if line else "\n" for line in lines)


if __name__ == "__main__":
    main()
