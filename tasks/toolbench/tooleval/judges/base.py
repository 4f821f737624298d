"""The judge interface: ToolEval's four questions, each answered with a label and a reason.

ToolEval asks an LLM four things, each through one function of its prompt template:

- ``check_answer_status``: Solved / Unsolved / Unsure from the query and the final answer;
- ``parse_answer_status``: the same from the whole answer (asked when the first said Unsure);
- ``check_task_solvable``: Solvable / Unsolvable / Unsure from the query and the tools;
- ``select_better_answer``: 0 or 1, the better of two answers *in the order shown*.

Every judge here (an OpenAI-compatible endpoint, a replayed file, the deterministic rules,
a scripted table for tests) answers exactly these, so the scoring code (pass rate, SoPR, win
rate) never knows which judge it has. ``run`` is the judge run (one of ToolEval's
``evaluate_times``, one of SoPR's runs, one win-rate round): an LLM judge sends it as the
request's ``seed``, so each run is its own request and its own cache entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tasks.toolbench.tooleval.records import EvalAnswer

STEPS = ("check_answer_status", "parse_answer_status", "check_task_solvable", "select_better_answer")


@dataclass(frozen=True)
class Verdict:
    """A judge's answer to one question: ``label`` is a status value (``"Solved"``...) or, for
    ``select_better_answer``, ``"0"``/``"1"`` or ``None`` when the judge cannot choose."""

    label: str | None
    reason: str


@runtime_checkable
class Judge(Protocol):
    name: str

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict: ...

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict: ...

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict: ...

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict: ...


def verdict_key(step: str, answers: tuple[EvalAnswer, ...], run: int) -> str:
    """How a verdict is filed: ``step|query_id|model[|model]|run`` (two models, in the order
    shown, for ``select_better_answer``). Replay files and scripted tables use these keys."""
    models = "|".join(a.model for a in answers)
    return f"{step}|{answers[0].query_id}|{models}|{run}"


class JudgeError(RuntimeError):
    """A judge that could not give a valid verdict (bad reply after retries, missing replay entry)."""
