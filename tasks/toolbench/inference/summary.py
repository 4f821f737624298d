"""A run's figures: per query from ``query_stats.jsonl``, totals and means as metrics, and the
summary table (with the server's source counts) shown at the end.

Metric names (``eval/`` for outcomes and costs, ``eval/source/`` for where API answers came
from, ``time/`` for wall time): ``eval/queries``, ``eval/searched``, ``eval/skipped``,
``eval/failed``, ``eval/answered_frac`` (ended with Finish(give_answer)),
``eval/give_up_frac``, ``eval/no_answer_frac``, ``eval/{llm_calls,api_calls,tokens,
seconds}_{mean,total}``, ``eval/parse_errors_total``, ``eval/budget_exhausted_frac``,
``eval/source/<source>`` counts and ``eval/source/cache_frac``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tasks.toolbench.inference.batch import STATS_FILE, answer_path

log = logging.getLogger(__name__)


def finished_figures(output_dir: Path, query_ids: list[str], method: str) -> list[dict[str, Any]]:
    """The latest figures of each query in ``query_ids`` whose answer file exists, plus those
    that failed in their latest attempt (no answer file, an ``error``)."""
    rows: dict[str, dict[str, Any]] = {}
    path = output_dir / STATS_FILE
    if path.exists():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: unreadable figures line (a crash mid-write?); skipped", path, lineno)
                continue
            if row.get("method") == method:
                rows[str(row["query_id"])] = row
    out = []
    for qid in query_ids:
        row = rows.get(qid)
        if row is not None and (row.get("error") or answer_path(output_dir, qid, method).exists()):
            out.append(row)
    return out


def metrics_of(rows: list[dict[str, Any]], searched: int, skipped: int, seconds: float) -> dict[str, float]:
    ok = [r for r in rows if not r.get("error")]
    n = max(len(ok), 1)
    metrics: dict[str, float] = {
        "eval/queries": float(len(rows)),
        "eval/searched": float(searched),
        "eval/skipped": float(skipped),
        "eval/failed": float(len(rows) - len(ok)),
        "eval/answered_frac": sum(1 for r in ok if r.get("win")) / n,
        "eval/give_up_frac": sum(1 for r in ok if not r.get("win") and r.get("finish_type") == "give_up") / n,
        "eval/no_answer_frac": sum(1 for r in ok if not r.get("valid_data")) / n,
        "eval/budget_exhausted_frac": sum(1 for r in ok if r.get("budget_exhausted")) / n,
        "eval/parse_errors_total": float(sum(r.get("parse_errors", 0) for r in ok)),
        "time/eval_s": seconds,
    }
    for name, key in (("llm_calls", "llm_calls"), ("api_calls", "api_calls"), ("tokens", "total_tokens"),
                      ("seconds", "seconds")):
        total = float(sum(r.get(key, 0) or 0 for r in ok))
        metrics[f"eval/{name}_total"] = total
        metrics[f"eval/{name}_mean"] = total / n
    sources: dict[str, int] = {}
    for r in ok:
        for source, count in (r.get("sources") or {}).items():
            sources[source] = sources.get(source, 0) + count
    for source, count in sorted(sources.items()):
        metrics[f"eval/source/{source}"] = float(count)
    metrics["eval/source/cache_frac"] = sources.get("cache", 0) / max(sum(sources.values()), 1)
    return metrics


def summary_text(metrics: dict[str, float], method: str, output_dir: Path) -> str:
    sources = ", ".join(f"{k.rsplit('/', 1)[1]} {int(v)}" for k, v in metrics.items()
                        if k.startswith("eval/source/") and not k.endswith("_frac")) or "none"
    return (f"{method}: {int(metrics['eval/queries'])} queries ({int(metrics['eval/searched'])} searched, "
            f"{int(metrics['eval/skipped'])} already done, {int(metrics['eval/failed'])} failed) in {output_dir}\n"
            f"answered {metrics['eval/answered_frac']:.1%}, gave up {metrics['eval/give_up_frac']:.1%}, "
            f"no answer {metrics['eval/no_answer_frac']:.1%}\n"
            f"per query: {metrics['eval/llm_calls_mean']:.1f} LLM calls, {metrics['eval/api_calls_mean']:.1f} API calls, "
            f"{metrics['eval/tokens_mean']:.0f} tokens, {metrics['eval/seconds_mean']:.2f} s\n"
            f"API answers by source: {sources}")


def show_summary(metrics: dict[str, float], method: str, output_dir: Path, to_console: bool) -> None:
    """Log the summary; with ``to_console`` also draw it as a table on stderr."""
    text = summary_text(metrics, method, output_dir)
    log.info("%s", text.replace("\n", "; "))
    if not to_console:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ToolBench {method}: {output_dir}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if not float(value).is_integer() else f"{int(value)}")
    Console(stderr=True).print(table)
