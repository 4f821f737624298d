"""The command line: check the overrides, then one run, a sweep, or an evaluation.

``python -m orchestrator --help`` lists the config groups and their options (Hydra).
Overrides are composed and checked before Hydra or Ray start: an unknown key gets the valid
keys of its section, a bad value the key and the valid range, each in one line, and nothing
is written.
"""

from __future__ import annotations

import sys
from typing import Any

from orchestrator.config.compose import CONF_DIR, check_overrides, normalize_argv


def print_summary(metrics: dict[str, Any]) -> None:
    """The closing lines of a run: held-out accuracy and where things were written."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="toolrl run", show_header=False)
    for key in ("eval/accuracy", "eval/accuracy_greedy", "eval/loss", "eval/action_right", "eval/arguments_json",
                "eval/constrained/action_right", "eval/constrained/arguments_json", "eval/finish_right", "eval/solved",
                "toolbench/sopr/overall/value", "env/reward_mean", "sft/loss",
                "objective/kl", "step", "time/ray_start_s", "time/warm_start_s", "time/train_s", "time/eval_run_s",
                "output_dir", "checkpoint", "run_id"):
        if key in metrics:
            value = metrics[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(width=max(Console().width, 140)).print(table)


def run_config(cfg: Any) -> dict[str, Any]:
    """What the command line does with a composed config: a sweep, an evaluation or one run,
    then the closing summary. Returns the final metrics."""
    if cfg.get("sweep"):
        from orchestrator.launch.sweep import run_sweep

        metrics = run_sweep(cfg)
    elif cfg.mode == "eval":
        from orchestrator.launch.evaluation import run_evaluation

        metrics = run_evaluation(cfg)
    else:
        from orchestrator.launch.experiment import run

        metrics = run(cfg)
    print_summary(metrics)
    return metrics


def _hydra_entry(cfg: Any) -> float | None:
    from orchestrator.config.checks import ConfigError

    try:
        metrics = run_config(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    value = metrics.get("eval/accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def main() -> None:
    import hydra

    from orchestrator.config.store import register_configs

    register_configs()
    sys.argv[1:] = normalize_argv(sys.argv[1:])
    error = check_overrides(sys.argv[1:])
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_hydra_entry)()
