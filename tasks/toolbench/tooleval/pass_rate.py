"""Pass rates: ToolEval's (ToolBench) and StableToolBench's solvable pass rate (SoPR).

ToolEval, per evaluation of an answer (``eval_pass_rate.py``; 4 per query in the paper, 7 in
``run_pass_rate.sh``):

1. no ``Finish`` at the end of the chain: Unsolved, failed, no judge asked;
2. ``check_is_solved``: an empty or given-up final answer is Unsolved without a judge (the
   task is still judged in step 3: a give-up on an Unsolvable task passes);
   otherwise ``check_answer_status`` on the final answer, and when that says Unsure,
   ``parse_answer_status`` on the whole answer;
3. not Solved: ``check_task_solvable`` (Solved answers are Solvable without asking);
4. ``is_passed``'s table: Solved -> Passed; Unsolved with Solvable -> Failed, with Unsure ->
   Unsure, with Unsolvable -> Passed; Unsure with Solvable or Unsure -> Unsure, with
   Unsolvable -> Passed;
5. an Unsure pass label is settled by a coin flip;
6. per query, the majority of the evaluations; a tie counts as a pass in the printed rate
   (``failed <= passed``) but is a coin flip in the label written for the win rate.

SoPR (StableToolBench's ``eval_pass_rate.py``): steps 1-2 only (its queries were filtered
to be solvable); each run scores (Solved + 0.5 x Unsure) / N; 3 runs; mean and population
standard deviation over runs.

We do exactly this, with each coin flip seeded by its place (:mod:`.draws`) and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from tasks.toolbench.tooleval.draws import coin, draw
from tasks.toolbench.tooleval.judges.base import Judge
from tasks.toolbench.tooleval.records import AnswerPass, AnswerStatus, EvalAnswer, TaskStatus, query_order

logger = logging.getLogger(__name__)

SOLVED, UNSOLVED, UNSURE = AnswerStatus.SOLVED.value, AnswerStatus.UNSOLVED.value, AnswerStatus.UNSURE.value
SOLVABLE, UNSOLVABLE = TaskStatus.SOLVABLE.value, TaskStatus.UNSOLVABLE.value

# ToolEval's is_passed: (answer status, task status) -> pass label.
PASS_TABLE = {
    (UNSOLVED, SOLVABLE): AnswerPass.FAILED.value,
    (UNSOLVED, TaskStatus.UNSURE.value): AnswerPass.UNSURE.value,
    (UNSOLVED, UNSOLVABLE): AnswerPass.PASSED.value,
    (UNSURE, SOLVABLE): AnswerPass.UNSURE.value,
    (UNSURE, TaskStatus.UNSURE.value): AnswerPass.UNSURE.value,
    (UNSURE, UNSOLVABLE): AnswerPass.PASSED.value,
}


@dataclass(frozen=True)
class Evaluation:
    """One judge run on one answer. ``answer_status`` is after the second look; ``passed``
    is after the coin flip (``coin_flip`` says whether there was one); ``reason`` is one line."""

    query_id: str
    group: str
    model: str
    run: int
    answer_status: str
    reason: str
    second_look: bool = False
    task_status: str | None = None
    pass_label: str | None = None
    passed: bool | None = None
    coin_flip: bool = False
    judged: bool = True
    stopped: str | None = None  # "no_finish" or "gave_up" when no judge saw the answer


def solve_status(answer: EvalAnswer, judge: Judge, run: int) -> Evaluation:
    """Steps 1-2: Solved / Unsolved / Unsure, shared by ToolEval's pass rate and SoPR."""
    base = dict(query_id=answer.query_id, group=answer.group, model=answer.model, run=run)
    if not answer.finished:
        return Evaluation(answer_status=UNSOLVED, reason="Unsolved: the chain does not end with a Finish call",
                          judged=False, stopped="no_finish", **base)
    if answer.gave_up:
        return Evaluation(answer_status=UNSOLVED, reason="Unsolved: the final answer is empty or gives up "
                          "(give_up_and_restart)", judged=False, stopped="gave_up", **base)
    first = judge.check_answer_status(answer, run)
    if first.label != UNSURE:
        return Evaluation(answer_status=str(first.label), reason=_line(first.reason), **base)
    second = judge.parse_answer_status(answer, run)
    return Evaluation(answer_status=str(second.label), second_look=True,
                      reason=_line(f"Unsure on the final answer, then on the whole answer: {second.reason}"), **base)


def tooleval_evaluation(answer: EvalAnswer, judge: Judge, run: int, seed: int) -> Evaluation:
    """Steps 1-5 for one evaluation (one judge run) of one answer."""
    status = solve_status(answer, judge, run)
    if status.stopped == "no_finish":  # ToolEval: "failed", task reported Solvable, no further question
        return replace(status, task_status=SOLVABLE, pass_label=AnswerPass.FAILED.value, passed=False)
    if status.answer_status == SOLVED:
        return replace(status, task_status=SOLVABLE, pass_label=AnswerPass.PASSED.value, passed=True)
    task = judge.check_task_solvable(answer, run)
    label = PASS_TABLE[(status.answer_status, str(task.label))]
    reason = _line(f"{status.reason} | task {task.label}: {task.reason}")
    if label == AnswerPass.UNSURE.value:
        return replace(status, task_status=str(task.label), pass_label=label, reason=reason,
                     passed=coin(seed, "unsure", answer.group, answer.model, answer.query_id, run),
                     coin_flip=True)
    return replace(status, task_status=str(task.label), pass_label=label, reason=reason,
                 passed=label == AnswerPass.PASSED.value)


def _line(text: str) -> str:
    return " ".join(str(text).split())


def _evaluate_all(answers: list[EvalAnswer], runs: int, one, max_workers: int) -> list[Evaluation]:
    jobs = [(answer, run) for answer in answers for run in range(runs)]
    if max_workers <= 1:
        results = [one(a, r) for a, r in jobs]
    else:
        with ThreadPoolExecutor(max_workers) as pool:
            results = list(pool.map(lambda job: one(*job), jobs))
    return sorted(results, key=lambda e: (e.group, query_order(e.query_id), e.run))


# ---------------------------------------------------------------------- ToolEval pass rate


@dataclass(frozen=True)
class QueryPass:
    """A query's evaluations combined: ToolEval counts a tie as a pass in its printed rate;
    ``label_passed`` is the label its file (and so the win rate) holds, a coin flip on ties."""

    query_id: str
    group: str
    passed_votes: int
    failed_votes: int
    label_passed: bool
    tie_flip: bool
    majority_status: str

    @property
    def tie(self) -> bool:
        return self.passed_votes == self.failed_votes

    @property
    def counted_passed(self) -> bool:
        return self.failed_votes <= self.passed_votes


@dataclass
class PassRateResult:
    """One group's ToolEval pass rate with what chance decided.

    ``pass_rate`` is ToolEval's printed figure (ties pass); ``per_run`` the rate each single
    evaluation gives alone (its spread is the judge's run-to-run noise)."""

    group: str
    queries: list[QueryPass]
    evaluations: list[Evaluation] = field(repr=False)
    runs: int = 0

    @property
    def pass_rate(self) -> float:
        return _mean([q.counted_passed for q in self.queries])

    @property
    def pass_rate_ties_failed(self) -> float:
        return _mean([q.passed_votes > q.failed_votes for q in self.queries])

    @property
    def label_pass_rate(self) -> float:
        return _mean([q.label_passed for q in self.queries])

    @property
    def per_run(self) -> list[float]:
        return [_mean([bool(e.passed) for e in self.evaluations if e.run == r]) for r in range(self.runs)]

    def counts(self) -> dict[str, int]:
        ev = self.evaluations
        return {
            "queries": len(self.queries),
            "evaluations": len(ev),
            "no_finish_or_gave_up": sum(not e.judged for e in ev),
            "answer_unsure_first_look": sum(e.second_look for e in ev),
            "answer_unsure": sum(e.answer_status == UNSURE for e in ev),
            "pass_unsure_coin_flips": sum(e.coin_flip for e in ev),
            "pass_unsure_flips_passed": sum(e.coin_flip and bool(e.passed) for e in ev),
            "ties": sum(q.tie for q in self.queries),
            "tie_flips_passed": sum(q.tie_flip and q.label_passed for q in self.queries),
        }


def majority(statuses: list[str], seed: int, *where: object) -> tuple[str, bool]:
    """The most frequent status; among equally frequent ones a seeded choice (True when it was one)."""
    counts = Counter(statuses)
    top = max(counts.values())
    tied = sorted(s for s, c in counts.items() if c == top)
    if len(tied) == 1:
        return tied[0], False
    return draw(seed, "majority", *where).choice(tied), True


def tooleval_pass_rate(answers: list[EvalAnswer], judge: Judge, *, evaluations: int = 4, seed: int = 0,
                       max_workers: int = 1) -> dict[str, PassRateResult]:
    """ToolEval's pass rate per group (``answers`` may hold several groups)."""
    evals = _evaluate_all(answers, evaluations, lambda a, r: tooleval_evaluation(a, judge, r, seed), max_workers)
    return {group: _combine_pass(group, [e for e in evals if e.group == group], evaluations, seed)
            for group in sorted({a.group for a in answers})}


def _combine_pass(group: str, evals: list[Evaluation], runs: int, seed: int) -> PassRateResult:
    by_query: dict[str, list[Evaluation]] = {}
    for e in evals:
        by_query.setdefault(e.query_id, []).append(e)
    queries = []
    for qid, mine in by_query.items():
        passed = sum(bool(e.passed) for e in mine)
        failed = len(mine) - passed
        tie = passed == failed
        model = mine[0].model
        label = coin(seed, "tie", group, model, qid) if tie else passed > failed
        status, _ = majority([e.answer_status for e in mine], seed, group, model, qid)
        queries.append(QueryPass(query_id=qid, group=group, passed_votes=passed, failed_votes=failed,
                                 label_passed=label, tie_flip=tie, majority_status=status))
    return PassRateResult(group=group, queries=queries, evaluations=evals, runs=runs)


# ---------------------------------------------------------------------- SoPR


@dataclass
class SoPRResult:
    """One group's solvable pass rate: per run (Solved + 0.5 x Unsure) / N."""

    group: str
    evaluations: list[Evaluation] = field(repr=False)
    runs: int = 3
    seed: int = 0

    @property
    def query_ids(self) -> list[str]:
        return list(dict.fromkeys(e.query_id for e in self.evaluations))

    @property
    def per_run(self) -> list[float]:
        n = len(self.query_ids)
        scores = []
        for r in range(self.runs):
            mine = [e for e in self.evaluations if e.run == r]
            solved = sum(e.answer_status == SOLVED for e in mine)
            unsure = sum(e.answer_status == UNSURE for e in mine)
            scores.append((solved + 0.5 * unsure) / n if n else 0.0)
        return scores

    def majority_labels(self) -> dict[str, tuple[str, bool]]:
        """Each query's most frequent label over runs (what SoWR compares), and whether a
        seeded choice settled a tie (StableToolBench meant ``max(set(l), key=l.count)``,
        whose pick among ties depends on set order)."""
        by_query: dict[str, list[Evaluation]] = {}
        for e in self.evaluations:
            by_query.setdefault(e.query_id, []).append(e)
        return {qid: majority([e.answer_status for e in mine], self.seed, self.group, mine[0].model, qid)
                for qid, mine in by_query.items()}

    def counts(self) -> dict[str, int]:
        ev = self.evaluations
        return {
            "queries": len(self.query_ids),
            "evaluations": len(ev),
            "solved": sum(e.answer_status == SOLVED for e in ev),
            "unsure": sum(e.answer_status == UNSURE for e in ev),
            "unsolved": sum(e.answer_status == UNSOLVED for e in ev),
            "no_finish_or_gave_up": sum(not e.judged for e in ev),
            "answer_unsure_first_look": sum(e.second_look for e in ev),
            "majority_ties": sum(tie for _, tie in self.majority_labels().values()),
        }


def sopr(answers: list[EvalAnswer], judge: Judge, *, runs: int = 3, seed: int = 0,
         max_workers: int = 1) -> dict[str, SoPRResult]:
    """StableToolBench's SoPR per group."""
    evals = _evaluate_all(answers, runs, lambda a, r: solve_status(a, judge, r), max_workers)
    return {group: SoPRResult(group=group, evaluations=[e for e in evals if e.group == group], runs=runs, seed=seed)
            for group in sorted({a.group for a in answers})}


def _mean(values: list[bool] | list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
