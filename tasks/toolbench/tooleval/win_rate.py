"""Win rate of a candidate against a reference, with the order swap that ToolEval meant.

ToolEval (``eval_preference.py``), per query and round (2 rounds by default):

- a query the reference lacks is the candidate's round, and the other way round;
- when the two pass-rate labels differ, the passing side wins the round, no judge asked
  (ToolBench compares its pass labels; StableToolBench compares Solved with Unsolved);
- otherwise ``normalized_openai_completions`` decides from the two answer statuses: one
  Solved answer wins; two Solved: the judge's ``select_better_answer``; else one Unsure
  wins; two Unsure, or neither: ``select_better_answer``; two identical answers: a coin;
- the candidate wins a query with more rounds than the reference, loses with fewer; ties apart.

The swap: round ``i`` was meant to show the candidate first when ``i`` is odd, but the test
reads ``if i % 2 == 0 or i >= 0`` (always true), so every round shows the reference first.
Separately, ``BaseEvaluator.annotate_preference`` shuffles the two answers (unseeded, from
many threads) but passes ``answer_statuss`` unshuffled, so after a shuffle each answer is
judged with the other one's status. Here round ``i`` shows the reference first when ``i`` is
even and the candidate first when odd, each answer travels with its own status, and the
index the judge returns is mapped back to the side it names; with an even number of rounds
a judge that always picks the first-shown answer gives a tie, not a reference win.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tasks.toolbench.tooleval.draws import coin
from tasks.toolbench.tooleval.judges.base import Judge
from tasks.toolbench.tooleval.records import AnswerStatus, EvalAnswer, query_order

logger = logging.getLogger(__name__)

REFERENCE, CANDIDATE = "reference", "candidate"
SOLVED, UNSOLVED, UNSURE = AnswerStatus.SOLVED.value, AnswerStatus.UNSOLVED.value, AnswerStatus.UNSURE.value


@dataclass(frozen=True)
class SideStatus:
    """What the pass-rate step left for the win rate: the pass label (ToolEval's shortcut)
    and the answer status (``normalized_openai_completions``'s input)."""

    passed: bool
    status: str


@dataclass(frozen=True)
class Round:
    """One round of one query: who got the vote (``None``: the judge declined to choose),
    how it was decided, and whether the first-shown answer was picked."""

    query_id: str
    run: int
    winner: str | None
    how: str
    reason: str
    first_shown: str | None = None
    picked_first: bool | None = None


@dataclass
class WinRateResult:
    group: str
    rounds: list[Round] = field(repr=False)
    num_rounds: int = 2

    def _votes(self) -> dict[str, tuple[int, int]]:
        votes: dict[str, list[int]] = {}
        for r in self.rounds:
            tally = votes.setdefault(r.query_id, [0, 0])
            if r.winner == REFERENCE:
                tally[0] += 1
            elif r.winner == CANDIDATE:
                tally[1] += 1
        return {qid: (ref, cand) for qid, (ref, cand) in votes.items()}

    def outcomes(self) -> dict[str, str]:
        """Per query ``win`` / ``lose`` / ``tie`` for the candidate."""
        return {qid: "win" if cand > ref else "lose" if cand < ref else "tie"
                for qid, (ref, cand) in self._votes().items()}

    def _rate(self, outcome: str) -> float:
        results = list(self.outcomes().values())
        return results.count(outcome) / len(results) if results else 0.0

    @property
    def win_rate(self) -> float:
        return self._rate("win")

    @property
    def tie_rate(self) -> float:
        return self._rate("tie")

    @property
    def lose_rate(self) -> float:
        return self._rate("lose")

    @property
    def per_run(self) -> list[float]:
        """Each round alone: the share of queries whose vote went to the candidate."""
        rates = []
        for i in range(self.num_rounds):
            mine = [r for r in self.rounds if r.run == i]
            rates.append(sum(r.winner == CANDIDATE for r in mine) / len(mine) if mine else 0.0)
        return rates

    def counts(self) -> dict[str, int]:
        rs = self.rounds
        judged = [r for r in rs if r.how == "judge"]
        return {
            "queries": len(self._votes()),
            "rounds": len(rs),
            "by_pass_label": sum(r.how == "pass_label" for r in rs),
            "by_status": sum(r.how == "status" for r in rs),
            "by_judge": len(judged),
            "identical_coin_flips": sum(r.how == "identical" for r in rs),
            "missing_answer": sum(r.how == "missing" for r in rs),
            "judge_no_choice": sum(r.how == "judge" and r.winner is None for r in rs),
            "judge_picked_first_shown": sum(bool(r.picked_first) for r in judged),
            "ties": list(self.outcomes().values()).count("tie"),
        }


def identical(a: EvalAnswer, b: EvalAnswer) -> bool:
    """ToolEval's ``check_identity_answers``: same final answer and same details."""
    return a.final_answer == b.final_answer and str(a.answer.get("answer_details")) == str(b.answer.get("answer_details"))


def judge_round(query_id: str, run: int, ref: EvalAnswer, cand: EvalAnswer, ref_status: SideStatus,
                cand_status: SideStatus, judge: Judge, seed: int, shortcut: str) -> Round:
    """One round; ``shortcut`` is ``"pass_label"`` (ToolBench) or ``"solved_vs_unsolved"`` (StableToolBench)."""
    if shortcut == "pass_label" and ref_status.passed != cand_status.passed:
        side = REFERENCE if ref_status.passed else CANDIDATE
        return Round(query_id, run, side, "pass_label", f"only the {side} passed")
    if shortcut == "solved_vs_unsolved" and {ref_status.status, cand_status.status} == {SOLVED, UNSOLVED}:
        side = REFERENCE if ref_status.status == SOLVED else CANDIDATE
        return Round(query_id, run, side, "pass_label", f"the {side} Solved, the other Unsolved")
    sides = (REFERENCE, CANDIDATE) if run % 2 == 0 else (CANDIDATE, REFERENCE)
    shown = (ref, cand) if run % 2 == 0 else (cand, ref)
    statuses = [ref_status.status, cand_status.status] if run % 2 == 0 else [cand_status.status, ref_status.status]
    for wanted in (SOLVED, UNSURE):
        hits = [i for i, s in enumerate(statuses) if s == wanted]
        if len(hits) == 1:
            return Round(query_id, run, sides[hits[0]], "status", f"only the {sides[hits[0]]} is {wanted}",
                         first_shown=sides[0])
        if len(hits) == 2:
            break
    if identical(*shown):
        first = coin(seed, "identical", ref.group, ref.model, cand.model, query_id, run)
        side = sides[0] if first else sides[1]
        return Round(query_id, run, side, "identical", "identical answers: coin flip", first_shown=sides[0])
    verdict = judge.select_better_answer(shown, run)
    if verdict.label is None:
        return Round(query_id, run, None, "judge", " ".join(verdict.reason.split()), first_shown=sides[0])
    index = int(verdict.label)
    return Round(query_id, run, sides[index], "judge", " ".join(verdict.reason.split()),
                 first_shown=sides[0], picked_first=index == 0)


def win_rate(reference: dict[str, EvalAnswer], candidate: dict[str, EvalAnswer],
             reference_status: dict[str, SideStatus], candidate_status: dict[str, SideStatus],
             judge: Judge, *, group: str, rounds: int = 2, seed: int = 0, shortcut: str = "pass_label",
             max_workers: int = 1) -> WinRateResult:
    """The candidate's win rate on one group. Query ids are the union of both answer sets."""
    if shortcut not in ("pass_label", "solved_vs_unsolved"):
        raise ValueError(f"shortcut must be 'pass_label' or 'solved_vs_unsolved', got {shortcut!r}")
    query_ids = sorted(set(reference) | set(candidate), key=query_order)

    def one(job: tuple[str, int]) -> Round:
        qid, run = job
        if qid not in reference:
            return Round(qid, run, CANDIDATE, "missing", "the reference has no answer")
        if qid not in candidate:
            return Round(qid, run, REFERENCE, "missing", "the candidate has no answer")
        return judge_round(qid, run, reference[qid], candidate[qid], reference_status[qid],
                           candidate_status[qid], judge, seed, shortcut)

    jobs = [(qid, run) for run in range(rounds) for qid in query_ids]
    if max_workers <= 1:
        results = [one(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers) as pool:
            results = list(pool.map(one, jobs))
    return WinRateResult(group=group, rounds=results, num_rounds=rounds)
