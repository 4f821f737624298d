"""The calculator's warm-start demonstrations (the shared mix of orchestrator/task/demonstrations.py)."""

from __future__ import annotations

import random
from collections.abc import Callable

from orchestrator.task import Problem
from orchestrator.task.demonstrations import ToolDemo
from orchestrator.tools.calculator import decimals_of, format_number

# How far a direct answer of a model without the tool lands from the truth.
GUESS_OFFSETS = (1, 2, 3, 5, 10, 0.1, 0.5, 1.5)


def guess(answer: float, round_digits: int, correct_frac: float, rng: random.Random) -> str:
    """A direct answer as a model without the tool gives one: near the truth, often wrong."""
    if rng.random() < correct_frac:
        return format_number(answer, round_digits)
    off = rng.choice([-1, 1]) * rng.choice(GUESS_OFFSETS)
    return format_number(answer + off, round_digits)


def calculator_demo(tool_name: str, round_digits: int, correct_frac: float, prompt: Callable[[Problem], str],
                    keep_decimals: bool = False) -> ToolDemo[Problem]:
    def result(p: Problem) -> str:  # exactly what the tool answers
        keep = min(decimals_of(p.meta["expression"]), round_digits) if keep_decimals else 0
        return format_number(p.answer, round_digits, min_decimals=keep)

    return ToolDemo(
        opener=f"<request><{tool_name}>",
        prompt=prompt,
        query=lambda p: p.meta["expression"],
        observe=lambda problems: [result(p) for p in problems],
        answer=lambda p: f"\n\nResult={result(p)}<submit>",
        guess=lambda p, rng: f"Result={guess(p.answer, round_digits, correct_frac, rng)}<submit>",
    )
