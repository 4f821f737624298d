"""A judge that replays verdicts from a file: rescore an evaluation without asking anyone.

The file is JSON lines ``{"key": "<step>|<query_id>|<model>[|<model>]|<run>", "label": ...,
"reason": ...}`` as :class:`RecordingJudge` writes them for
any judge's run, so an LLM judge's verdicts can be rescored (other seeds, another rule for
ties) at no cost. A verdict the file lacks is an error naming the key, never a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.toolbench.tooleval.judges.base import Judge, JudgeError, Verdict, verdict_key
from tasks.toolbench.tooleval.records import EvalAnswer


class ReplayJudge(Judge):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"replay:{self.path.name}"
        self.verdicts: dict[str, Verdict] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.verdicts[str(record["key"])] = Verdict(record["label"], str(record.get("reason", "")))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{self.path}:{number}: expected {{key, label, reason}} ({err})") from err

    def _answer(self, step: str, answers: tuple[EvalAnswer, ...], run: int) -> Verdict:
        key = verdict_key(step, answers, run)
        if key not in self.verdicts:
            raise JudgeError(f"{self.path}: no verdict for {key}")
        return self.verdicts[key]

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("check_answer_status", (answer,), run)

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("parse_answer_status", (answer,), run)

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._answer("check_task_solvable", (answer,), run)

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict:
        return self._answer("select_better_answer", shown, run)


class RecordingJudge(Judge):
    """Wraps a judge and files each verdict it gives under its key; :meth:`write` saves them
    in the format :class:`ReplayJudge` reads."""

    def __init__(self, inner: Judge) -> None:
        self.inner = inner
        self.name = inner.name
        self.verdicts: dict[str, Verdict] = {}

    def _keep(self, step: str, answers: tuple[EvalAnswer, ...], run: int, verdict: Verdict) -> Verdict:
        self.verdicts[verdict_key(step, answers, run)] = verdict
        return verdict

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._keep("check_answer_status", (answer,), run, self.inner.check_answer_status(answer, run))

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._keep("parse_answer_status", (answer,), run, self.inner.parse_answer_status(answer, run))

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict:
        return self._keep("check_task_solvable", (answer,), run, self.inner.check_task_solvable(answer, run))

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict:
        return self._keep("select_better_answer", shown, run, self.inner.select_better_answer(shown, run))

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for key in sorted(self.verdicts):
                verdict = self.verdicts[key]
                out.write(json.dumps({"key": key, "label": verdict.label, "reason": verdict.reason},
                                     ensure_ascii=False) + "\n")
        return path
