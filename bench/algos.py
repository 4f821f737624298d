"""GRPO against PPO, measured: the same tasks, seeds and warm start, one Tune sweep per algorithm.

    python bench/algos.py                                  # calculator and triviaqa_synthetic, 4 seeds
    python bench/algos.py --tasks calculator --seeds 2 --variants ppo grpo4

Each variant is a seed sweep (``sweep=seeds``) of ``python -m orchestrator task=<task>
algo=...``; all variants of a task share one warm start (``model.tiny.seed=0``), so a seed
changes only the RL run (sampling, data order, value head). Writes ``bench/algos.png`` (per
task: held-out sampled accuracy against episodes and against seconds of RL, mean and std band
over seeds) and appends a table to bench/RESULTS.md: final sampled and greedy accuracy (mean
± std), episodes and seconds to 0.9, seconds per step.

Variants: ``ppo`` (the default: one gradient step per batch, ratio 1, no clipping),
``ppo_clipped`` (2 epochs of 4 minibatches: the clip engages), ``grpo4`` and ``grpo8``
(``algo=grpo algo.group_size=4|8``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402

VARIANTS = {
    "ppo": ["algo=ppo"],
    "ppo_clipped": ["algo=ppo", "algo.ppo_epochs=2", "algo.minibatch_size=16"],
    "grpo4": ["algo=grpo", "algo.group_size=4"],
    "grpo8": ["algo=grpo", "algo.group_size=8"],
}
TASK_OVERRIDES = {"calculator": [], "triviaqa_synthetic": ["trainer.max_steps=60", "trainer.eval_every=5"]}


def run_variant(task: str, variant: str, seeds: int, root: Path, extra: list[str]) -> Path:
    from orchestrator.config import compose_config
    from orchestrator.launch.sweep import run_sweep

    out = root / task / variant
    cfg = compose_config([f"task={task}", *VARIANTS[variant], *TASK_OVERRIDES.get(task, []), "sweep=seeds",
                          f"sweep.num_seeds={seeds}", "model.tiny.seed=0", "logger=none", f"output_dir={out}", *extra])
    run_sweep(cfg)
    return out


def curves(sweep: Path, batch_size: int) -> list[list[tuple[float, float, float]]]:
    """Per trial: (episodes, seconds of RL, sampled accuracy) at each evaluation."""
    found = []
    for path in sorted((sweep / "trials").glob("*/metrics.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        found.append([(r["step"] * batch_size, r["time"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r])
    return found


def finals(sweep: Path) -> list[dict]:
    out = []
    for path in sorted((sweep / "trials").glob("*/metrics.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        evals = [r for r in rows if "eval/accuracy" in r]
        steps = [r["time/step_s"] for r in rows if "time/step_s" in r and "eval/accuracy" not in r]
        reached = next((r for r in evals if r["eval/accuracy"] >= 0.9), None)
        out.append({"sampled": evals[-1]["eval/accuracy"], "greedy": evals[-1]["eval/accuracy_greedy"],
                    "step_to_0.9": reached["step"] if reached else None, "s_to_0.9": reached["time"] if reached else None,
                    "s_per_step": statistics.median(steps) if steps else float("nan")})
    return out


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def plot(results: dict[str, dict[str, Path]], batch_size: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 3.8 * len(results)), squeeze=False)
    for row, (task, variants) in enumerate(results.items()):
        for i, (variant, sweep) in enumerate(variants.items()):
            trials = [c for c in curves(sweep, batch_size) if c]
            if not trials:
                continue
            n = min(len(c) for c in trials)
            acc = np.array([[p[2] for p in c[:n]] for c in trials])
            episodes = np.array([p[0] for p in trials[0][:n]])
            seconds = np.mean([[p[1] for p in c[:n]] for c in trials], axis=0)
            for ax, x in ((axes[row][0], episodes), (axes[row][1], seconds)):
                mean, std = acc.mean(0), acc.std(0)
                ax.plot(x, mean, color=f"C{i}", label=f"{variant} (n={len(trials)})")
                ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        for ax, label in ((axes[row][0], "episodes"), (axes[row][1], "seconds of RL (2 CPU cores)")):
            ax.set_title(f"{task}: held-out accuracy (sampled)")
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
            ax.set_ylim(0, 1)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--tasks", nargs="+", default=["calculator", "triviaqa_synthetic"])
    parser.add_argument("--variants", nargs="+", default=["ppo", "grpo4", "grpo8"], choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--root", type=Path, default=None, help="reuse finished sweeps in this folder")
    args, extra = parser.parse_known_args()
    root = args.root or REPO / "outputs" / "bench" / datetime.datetime.now().strftime("algos_%Y%m%d_%H%M%S")
    started = time.perf_counter()
    results: dict[str, dict[str, Path]] = {}
    for task in args.tasks:
        results[task] = {}
        for variant in args.variants:
            sweep = root / task / variant
            if not (sweep / "summary.csv").exists():
                run_variant(task, variant, args.seeds, root, extra)
            results[task][variant] = sweep
    batch_size = 64
    figure = REPO / "bench" / "algos.png"
    plot(results, batch_size, figure)
    lines = ["| task | variant | final sampled | final greedy | episodes to 0.9 | s of RL to 0.9 | s/step | seeds at 0.9 |",
             "|---|---|---|---|---|---|---|---|"]
    for task, variants in results.items():
        for variant, sweep in variants.items():
            f = finals(sweep)
            reached = [x for x in f if x["step_to_0.9"] is not None]
            lines.append(
                f"| {task} | {variant} | {mean_std([x['sampled'] for x in f])} | {mean_std([x['greedy'] for x in f])} "
                f"| {mean_std([x['step_to_0.9'] * batch_size for x in reached]) if reached else 'never'} "
                f"| {mean_std([x['s_to_0.9'] for x in reached]) if reached else 'never'} "
                f"| {statistics.mean(x['s_per_step'] for x in f):.2f} | {len(reached)}/{len(f)} |")
    lines.append("")
    lines.append(f"total {((time.perf_counter() - started) / 60):.0f} min; plot bench/{figure.name}; runs in "
                 f"{root.relative_to(REPO) if root.is_relative_to(REPO) else root}")
    print("\n".join(lines))
    with (REPO / "bench" / "RESULTS.md").open("a") as f:
        f.write(f"\n### algos (PPO vs GRPO) — {datetime.date.today()} — {machine()}\n")
        f.write(f"`python bench/algos.py --tasks {' '.join(args.tasks)} --variants {' '.join(args.variants)} "
                f"--seeds {args.seeds} {' '.join(extra)}`\n\n")
        f.writelines(line + "\n" for line in lines)


if __name__ == "__main__":
    main()
