"""Seed summaries: mean and spread over seeds, as in paper figures.

    python -m orchestrator.launch.report SWEEP_DIR [--metrics env/reward_mean objective/kl eval/accuracy]

Reads every trial's ``metrics.jsonl`` under ``SWEEP_DIR/trials/``, and writes
``seeds.png`` (per metric: mean line, std band, min/max faint), ``summary.md`` and
``summary.csv`` (final values per seed, mean ± std per grid point, failed trials and why).
Runs at the end of every sweep; the PNG and table also go to W&B in the sweep's group.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_METRICS = ["env/reward_mean", "objective/kl", "eval/accuracy"]
TRIAL_FILE = "trial.json"  # written by orchestrator/launch/sweep.py in every trial's folder


def load_trials(sweep_dir: Path) -> dict[str, list[dict[str, Any]]]:
    trials = {}
    for path in sorted((sweep_dir / "trials").glob("*/metrics.jsonl")):
        rows = []
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a killed writer: the rest of the file still counts
        trials[path.parent.name] = rows
    return trials


def trial_identity(sweep_dir: Path, name: str) -> tuple[str, int]:
    """(grid point, seed) of a trial, from the trial.json its sweep wrote: 'lr=1e-05', 3."""
    path = Path(sweep_dir) / "trials" / name / TRIAL_FILE
    if not path.exists():
        return name, -1
    info = json.loads(path.read_text())
    point = "-".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(info.get("overrides", {}).items()))
    return point or "default", int(info["seed"])


def series(rows: list[dict[str, Any]], metric: str) -> dict[int, float]:
    return {int(r["step"]): float(r[metric]) for r in rows if metric in r and r.get(metric) is not None}


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def plot(trials: dict[str, list[dict[str, Any]]], identities: dict[str, tuple[str, int]], metrics: list[str],
         out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[str]] = defaultdict(list)
    for name in trials:
        groups[identities.get(name, (name, -1))[0]].append(name)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for gi, (group, names) in enumerate(sorted(groups.items())):
            curves = [series(trials[n], metric) for n in names]
            curves = [c for c in curves if c]
            if not curves:
                continue
            steps = sorted(set().union(*curves))
            stats = [[c[s] for c in curves if s in c] for s in steps]
            mean = [sum(v) / len(v) for v in stats]
            std = [_mean_std(v)[1] for v in stats]
            colour = f"C{gi}"
            label = f"{group} (n={len(curves)})"
            ax.plot(steps, mean, color=colour, label=label)
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=colour, alpha=0.25)
            ax.plot(steps, [min(v) for v in stats], color=colour, alpha=0.35, lw=0.8, ls="--")
            ax.plot(steps, [max(v) for v in stats], color=colour, alpha=0.35, lw=0.8, ls="--")
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("mean ± std over seeds (dashed: min / max)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def final_values(rows: list[dict[str, Any]], metric: str) -> float | None:
    values = series(rows, metric)
    return values[max(values)] if values else None


def tables(trials: dict[str, list[dict[str, Any]]], identities: dict[str, tuple[str, int]], metrics: list[str],
           failures: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    """(per-trial rows, per-group mean ± std rows); the first row of each is its header."""
    per_trial = [["trial", "group", "seed", "last step", *metrics, "status"]]
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name in sorted(set(trials) | set(failures)):
        rows = trials.get(name, [])
        group, seed = identities.get(name, (name, -1))
        steps = [int(r["step"]) for r in rows if "step" in r]
        finals = [final_values(rows, m) for m in metrics]
        status = f"failed: {failures[name]}" if name in failures else "ok"
        per_trial.append([name, group, str(seed), str(max(steps) if steps else "-"),
                          *["-" if v is None else f"{v:.4f}" for v in finals], status])
        if name not in failures:
            for m, v in zip(metrics, finals):
                if v is not None:
                    grouped[group][m].append(v)
    per_group = [["group", "seeds", *[f"{m} (mean ± std)" for m in metrics]]]
    for group, values in sorted(grouped.items()):
        cells = []
        for m in metrics:
            if values.get(m):
                mean, std = _mean_std(values[m])
                cells.append(f"{mean:.4f} ± {std:.4f}")
            else:
                cells.append("-")
        per_group.append([group, str(max((len(v) for v in values.values()), default=0)), *cells])
    return per_trial, per_group


def _markdown(rows: list[list[str]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def summarize(sweep_dir: Path, metrics: list[str] | None = None, failures: dict[str, str] | None = None,
              logger_cfg: Any = None, group: str | None = None) -> dict[str, Any]:
    """Write seeds.png, summary.md and summary.csv; print the tables; log them to W&B."""
    from rich.console import Console
    from rich.table import Table

    sweep_dir = Path(sweep_dir)
    metrics = list(metrics or DEFAULT_METRICS)
    failures_path = sweep_dir / "failures.json"
    known = json.loads(failures_path.read_text()) if failures_path.exists() else {}
    if failures is not None:
        known = {k: v for k, v in {**known, **failures}.items() if k in failures}  # a resumed trial may have recovered
        failures_path.write_text(json.dumps(known, indent=1))
    trials = load_trials(sweep_dir)
    identities = {name: trial_identity(sweep_dir, name) for name in set(trials) | set(known)}
    per_trial, per_group = tables(trials, identities, metrics, known)
    png = sweep_dir / "seeds.png"
    plot(trials, identities, metrics, png)
    (sweep_dir / "summary.md").write_text(
        f"# Sweep summary: {sweep_dir.name}\n\n![seeds](seeds.png)\n\n## Final values per trial\n\n{_markdown(per_trial)}\n\n"
        f"## Mean ± std over seeds\n\n{_markdown(per_group)}\n"
    )
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        csv.writer(f).writerows(per_trial)
    console = Console()
    for title, rows in (("final values per trial", per_trial), ("mean ± std over seeds", per_group)):
        table = Table(title=title)
        for col in rows[0]:
            table.add_column(col)
        for row in rows[1:]:
            table.add_row(*row)
        console.print(table)
    console.print(f"seed plot: {png}\nsummary: {sweep_dir / 'summary.md'}")
    if logger_cfg is not None and logger_cfg.name == "wandb":
        _log_to_wandb(logger_cfg, group or sweep_dir.name, png, per_trial, sweep_dir)
    return {"sweep_dir": str(sweep_dir), "trials": len(trials), "failed": len(known), "plot": str(png)}


def _log_to_wandb(logger_cfg: Any, group: str, png: Path, per_trial: list[list[str]], sweep_dir: Path) -> None:
    import wandb

    from orchestrator.tracking.tracker import resolve_wandb_mode

    mode = resolve_wandb_mode(logger_cfg.mode)
    if mode == "disabled":
        return
    run = wandb.init(project=logger_cfg.project, entity=logger_cfg.entity, group=group, name=f"{group}-summary",
                     job_type="summary", mode=mode, dir=str(sweep_dir), tags=list(logger_cfg.tags or []))
    run.log({"seeds": wandb.Image(str(png)), "summary": wandb.Table(columns=per_trial[0], data=per_trial[1:])})
    run.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed plot and summary table of a sweep folder.")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS)
    args = parser.parse_args()
    if not (args.sweep_dir / "trials").is_dir():
        parser.error(f"{args.sweep_dir}: no trials/ folder (not a sweep output folder)")
    summarize(args.sweep_dir, args.metrics)


if __name__ == "__main__":
    main()
