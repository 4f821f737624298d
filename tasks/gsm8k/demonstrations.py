"""GSM8K's warm-start demonstrations: annotation programs, or a direct (mostly wrong) guess."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.task import Problem
from orchestrator.task.demonstrations import ToolDemo
from orchestrator.tools.calculator import format_number
from tasks.gsm8k.programs import numbers_in


@dataclass(frozen=True)
class ProgramDemo:
    """A training problem whose annotations make a program that prints its answer."""

    problem: Problem
    program: str
    printed: str


def guess(problem: Problem, correct_frac: float, rng: random.Random) -> str:
    """A direct answer as a model without the tool gives one: a number from the question or one
    near the truth; right with probability ``correct_frac``."""
    answer = float(problem.answer)
    if rng.random() < correct_frac:
        return format_number(answer, 2)
    given = sorted(numbers_in(problem.question) - {answer})
    if given and rng.random() < 0.5:
        return format_number(rng.choice(given), 2)
    off = rng.choice([-1, 1]) * max(1.0, round(abs(answer) * rng.choice([0.1, 0.2, 0.5, 1.0])))
    return format_number(answer + off, 2)


def program_demo(tool_name: str, correct_frac: float, prompt: Callable[[Problem], str]) -> ToolDemo[ProgramDemo]:
    return ToolDemo(
        opener=f"<request><{tool_name}>",
        prompt=lambda d: prompt(d.problem),
        query=lambda d: d.program,
        observe=lambda demos: [d.printed for d in demos],
        answer=lambda d: f"\n\nResult={d.printed.strip()}<submit>",
        guess=lambda d, rng: f"Result={guess(d.problem, correct_frac, rng)}<submit>",
    )
