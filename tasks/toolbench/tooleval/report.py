"""Scores as rows: per group, all queries pooled, and the mean of the groups (the papers'
"Average" column); printed as markdown or a rich table, and flattened for W&B.

Every row carries the figure, its mean and population standard deviation over judge runs,
and the counts of what chance and shortcuts decided, so a reader can see how much of a
score was a coin.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from tasks.toolbench.tooleval.pass_rate import PassRateResult, SoPRResult
from tasks.toolbench.tooleval.win_rate import WinRateResult

POOLED, AVERAGE = "overall", "average"


@dataclass
class ScoreRow:
    """``value`` is the headline figure (ToolEval: majority over runs; SoPR: the mean over
    runs); ``per_run`` the same figure from each judge run alone."""

    metric: str
    group: str
    value: float
    per_run: list[float]
    counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def run_mean(self) -> float:
        return statistics.fmean(self.per_run) if self.per_run else 0.0

    @property
    def run_std(self) -> float:
        return statistics.pstdev(self.per_run) if len(self.per_run) > 1 else 0.0


def _average_row(metric: str, rows: list[ScoreRow]) -> ScoreRow:
    runs = min(len(r.per_run) for r in rows)
    per_run = [statistics.fmean(r.per_run[i] for r in rows) for i in range(runs)]
    extra = {k: statistics.fmean(r.extra[k] for r in rows) for k in rows[0].extra}
    return ScoreRow(metric, AVERAGE, statistics.fmean(r.value for r in rows), per_run, {}, extra)


def _sum_counts(rows: list[ScoreRow]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in rows:
        for k, v in r.counts.items():
            total[k] = total.get(k, 0) + v
    return total


def sopr_rows(results: dict[str, SoPRResult]) -> list[ScoreRow]:
    rows = [ScoreRow("sopr", g, statistics.fmean(r.per_run), r.per_run, r.counts()) for g, r in results.items()]
    if len(rows) > 1:
        evaluations = [e for r in results.values() for e in r.evaluations]
        runs = min(r.runs for r in results.values())
        n = sum(len(r.query_ids) for r in results.values())
        per_run = []
        for i in range(runs):
            mine = [e for e in evaluations if e.run == i]
            per_run.append((sum(e.answer_status == "Solved" for e in mine)
                            + 0.5 * sum(e.answer_status == "Unsure" for e in mine)) / n)
        rows += [ScoreRow("sopr", POOLED, statistics.fmean(per_run), per_run, _sum_counts(rows)),
                 _average_row("sopr", rows)]
    return rows


def pass_rate_rows(results: dict[str, PassRateResult]) -> list[ScoreRow]:
    rows = []
    for g, r in results.items():
        rows.append(ScoreRow("pass_rate", g, r.pass_rate, r.per_run, r.counts(),
                             {"ties_failed": r.pass_rate_ties_failed, "label": r.label_pass_rate}))
    if len(rows) > 1:
        queries = [q for r in results.values() for q in r.queries]
        runs = min(r.runs for r in results.values())
        evaluations = [e for r in results.values() for e in r.evaluations]
        per_run = [sum(bool(e.passed) for e in evaluations if e.run == i) / len(queries) for i in range(runs)]
        pooled = ScoreRow("pass_rate", POOLED, sum(q.counted_passed for q in queries) / len(queries), per_run,
                          _sum_counts(rows),
                          {"ties_failed": sum(q.passed_votes > q.failed_votes for q in queries) / len(queries),
                           "label": sum(q.label_passed for q in queries) / len(queries)})
        rows += [pooled, _average_row("pass_rate", rows)]
    return rows


def win_rate_rows(results: dict[str, WinRateResult]) -> list[ScoreRow]:
    rows = [ScoreRow("win_rate", g, r.win_rate, r.per_run, r.counts(), {"tie_rate": r.tie_rate, "lose_rate": r.lose_rate})
            for g, r in results.items()]
    if len(rows) > 1:
        outcomes = [o for r in results.values() for o in r.outcomes().values()]
        rounds = min(r.num_rounds for r in results.values())
        all_rounds = [x for r in results.values() for x in r.rounds]
        per_run = [sum(x.winner == "candidate" for x in all_rounds if x.run == i) / len(outcomes) for i in range(rounds)]
        rows += [ScoreRow("win_rate", POOLED, outcomes.count("win") / len(outcomes), per_run, _sum_counts(rows),
                          {"tie_rate": outcomes.count("tie") / len(outcomes),
                           "lose_rate": outcomes.count("lose") / len(outcomes)}),
                 _average_row("win_rate", rows)]
    return rows


def metrics(rows: list[ScoreRow], prefix: str = "toolbench") -> dict[str, float]:
    """Flat ``prefix/metric/group/name`` figures for W&B (rates in percent, as the papers print them)."""
    out: dict[str, float] = {}
    for r in rows:
        base = f"{prefix}/{r.metric}/{r.group}"
        out[f"{base}/value"] = 100 * r.value
        out[f"{base}/run_mean"] = 100 * r.run_mean
        out[f"{base}/run_std"] = 100 * r.run_std
        for k, v in r.extra.items():
            out[f"{base}/{k}"] = 100 * v
        for k, v in r.counts.items():
            out[f"{base}/count/{k}"] = float(v)
    return out


COUNT_COLUMNS = {
    "sopr": ("solved", "unsure", "unsolved", "no_finish_or_gave_up", "answer_unsure_first_look", "majority_ties"),
    "pass_rate": ("no_finish_or_gave_up", "answer_unsure", "pass_unsure_coin_flips", "pass_unsure_flips_passed",
                  "ties", "tie_flips_passed"),
    "win_rate": ("by_pass_label", "by_status", "by_judge", "judge_picked_first_shown", "identical_coin_flips",
                 "judge_no_choice", "ties"),
}


def markdown(rows: list[ScoreRow]) -> str:
    """One table per metric: the figure, mean ± std over runs, each run, and the counts."""
    blocks = []
    for metric in dict.fromkeys(r.metric for r in rows):
        mine = [r for r in rows if r.metric == metric]
        counts = COUNT_COLUMNS.get(metric.split(":")[0], ())
        extras = list(mine[0].extra)
        head = ["group", metric, "mean ± std over runs", "per run", *extras, *counts]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in mine:
            cells = [r.group, f"{100 * r.value:.1f}", f"{100 * r.run_mean:.1f} ± {100 * r.run_std:.1f}",
                     " / ".join(f"{100 * x:.1f}" for x in r.per_run),
                     *(f"{100 * r.extra[k]:.1f}" for k in extras),
                     *(str(r.counts.get(k, "")) for k in counts)]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def rich_table(rows: list[ScoreRow], title: str = "ToolEval"):
    """The same figures as a rich Table (for the terminal)."""
    from rich.table import Table

    table = Table(title=title)
    for name in ("metric", "group", "value", "mean ± std", "per run", "counts"):
        table.add_column(name)
    for r in rows:
        counts = ", ".join(f"{k}={r.counts[k]}" for k in COUNT_COLUMNS.get(r.metric.split(":")[0], ()) if k in r.counts)
        table.add_row(r.metric, r.group, f"{100 * r.value:.1f}", f"{100 * r.run_mean:.1f} ± {100 * r.run_std:.1f}",
                      " / ".join(f"{100 * x:.1f}" for x in r.per_run), counts)
    return table
