"""One call per evaluation: answers in, a report out (rows, W&B metrics, one line per label).

    report = evaluate_pass(answers, judge, metric="sopr", runs=3, seed=0)
    print(report.markdown()); wandb.log(report.metrics())

``metric="sopr"`` is StableToolBench's solvable pass rate (the default), ``"pass_rate"``
ToolEval's. :func:`evaluate_win` scores a candidate against a reference on top of both
sides' pass-rate results.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.tooleval import report as reporting
from tasks.toolbench.tooleval.judges.base import Judge
from tasks.toolbench.tooleval.pass_rate import PassRateResult, SoPRResult, sopr, tooleval_pass_rate
from tasks.toolbench.tooleval.records import AnswerStatus, EvalAnswer
from tasks.toolbench.tooleval.win_rate import SideStatus, WinRateResult, win_rate

logger = logging.getLogger(__name__)

METRICS = ("sopr", "pass_rate")


@dataclass
class EvalReport:
    """``labels`` holds one explained line per judged evaluation or round, sorted."""

    rows: list[reporting.ScoreRow]
    labels: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[str, SideStatus]] = field(default_factory=dict, repr=False)

    def metrics(self, prefix: str = "toolbench") -> dict[str, float]:
        out = reporting.metrics(self.rows, prefix)
        for key, value in self.cost.items():
            out[f"{prefix}/judge/{key}"] = float(value)
        return out

    def markdown(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{settings}\n\n{reporting.markdown(self.rows)}"


def _cost(judge: Judge) -> dict[str, int]:
    inner = getattr(judge, "inner", judge)
    cost = getattr(inner, "cost", None)
    return cost.as_dict() if cost is not None else {}


def evaluate_pass(answers: list[EvalAnswer], judge: Judge, *, metric: str = "sopr", runs: int | None = None,
                  seed: int = 0, max_workers: int = 1) -> EvalReport:
    """SoPR (``runs`` default 3) or ToolEval's pass rate (``runs`` = evaluations per answer, default 4)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not answers:
        raise ValueError("no answers to evaluate")
    _check_unique(answers)
    if metric == "sopr":
        runs = runs or 3
        results: dict[str, SoPRResult] | dict[str, PassRateResult] = sopr(
            answers, judge, runs=runs, seed=seed, max_workers=max_workers)
        rows = reporting.sopr_rows(results)
        statuses = {g: {qid: SideStatus(passed=label == AnswerStatus.SOLVED.value, status=label)
                        for qid, (label, _) in r.majority_labels().items()} for g, r in results.items()}
    else:
        runs = runs or 4
        results = tooleval_pass_rate(answers, judge, evaluations=runs, seed=seed, max_workers=max_workers)
        rows = reporting.pass_rate_rows(results)
        statuses = {g: {q.query_id: SideStatus(passed=q.label_passed, status=q.majority_status) for q in r.queries}
                    for g, r in results.items()}
    labels = []
    for r in results.values():
        for e in r.evaluations:
            verdict = e.answer_status if metric == "sopr" else f"{e.answer_status} -> {'passed' if e.passed else 'failed'}"
            flip = " (coin flip)" if e.coin_flip else ""
            labels.append(f"{e.group} {e.query_id} run {e.run}: {verdict}{flip} | {e.reason}")
    return EvalReport(rows=rows, labels=labels, statuses=statuses, cost=_cost(judge),
                      settings={"metric": metric, "judge": judge.name, "runs": runs, "seed": seed,
                                "answers": len(answers)})


def evaluate_win(reference: list[EvalAnswer], candidate: list[EvalAnswer], judge: Judge, *,
                 reference_report: EvalReport, candidate_report: EvalReport, rounds: int = 2, seed: int = 0,
                 max_workers: int = 1) -> EvalReport:
    """The candidate's win rate per group, from both sides' pass-rate reports (same metric).
    ToolBench's shortcut (pass labels differ) follows a ``pass_rate`` report, StableToolBench's
    (Solved against Unsolved) a ``sopr`` one."""
    metric = reference_report.settings.get("metric")
    if metric != candidate_report.settings.get("metric"):
        raise ValueError("both sides' pass-rate reports must use the same metric")
    shortcut = "solved_vs_unsolved" if metric == "sopr" else "pass_label"
    by_group_ref = _by_group(reference)
    by_group_cand = _by_group(candidate)
    results: dict[str, WinRateResult] = {}
    for group in sorted(set(by_group_ref) | set(by_group_cand)):
        results[group] = win_rate(by_group_ref.get(group, {}), by_group_cand.get(group, {}),
                                  reference_report.statuses.get(group, {}), candidate_report.statuses.get(group, {}),
                                  judge, group=group, rounds=rounds, seed=seed, shortcut=shortcut,
                                  max_workers=max_workers)
    labels = [f"{g} {r.query_id} round {r.run}: {r.winner or 'no choice'} ({r.how}"
              f"{', ' + r.first_shown + ' shown first' if r.first_shown else ''}) | {r.reason}"
              for g, res in results.items() for r in res.rounds]
    return EvalReport(rows=reporting.win_rate_rows(results), labels=labels, cost=_cost(judge),
                      settings={"metric": "win_rate", "judge": judge.name, "rounds": rounds, "seed": seed,
                                "shortcut": shortcut, "reference": _model(reference), "candidate": _model(candidate)})


def _by_group(answers: list[EvalAnswer]) -> dict[str, dict[str, EvalAnswer]]:
    out: dict[str, dict[str, EvalAnswer]] = {}
    for a in answers:
        out.setdefault(a.group, {})[a.query_id] = a
    return out


def _model(answers: list[EvalAnswer]) -> str:
    return ",".join(sorted({a.model for a in answers}))


def _check_unique(answers: list[EvalAnswer]) -> None:
    seen = set()
    for a in answers:
        key = (a.group, a.query_id, a.model)
        if key in seen:
            raise ValueError(f"two answers for query {a.query_id} of {a.group} ({a.model}); one per query")
        seen.add(key)
