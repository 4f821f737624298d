"""A judge that answers from a table: for tests that must know every verdict in advance."""

from __future__ import annotations

from tasks.toolbench.tooleval.judges.base import Judge, JudgeError, Verdict, verdict_key
from tasks.toolbench.tooleval.records import EvalAnswer


class ScriptedJudge(Judge):
    """Labels by :func:`verdict_key`; ``defaults`` gives a label per step for keys not listed.
    ``asked`` lists every key in the order asked, so a test can check what was (not) asked."""

    name = "scripted"

    def __init__(self, table: dict[str, str | None] | None = None,
                 defaults: dict[str, str | None] | None = None) -> None:
        self.table = dict(table or {})
        self.defaults = dict(defaults or {})
        self.asked: list[str] = []

    def _answer(self, step: str, answers: tuple[EvalAnswer, ...], run: int) -> Verdict:
        key = verdict_key(step, answers, run)
        self.asked.append(key)
        if key in self.table:
            return Verdict(self.table[key], f"scripted {key}")
        if step in self.defaults:
            return Verdict(self.defaults[step], f"scripted default for {step}")
        raise JudgeError(f"scripted judge has no verdict for {key}")

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("check_answer_status", (answer,), run)

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("parse_answer_status", (answer,), run)

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("check_task_solvable", (answer,), run)

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict:
        return self._answer("select_better_answer", shown, run)
