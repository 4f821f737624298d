"""Calculator problems: two operands, integers or one-decimal numbers in [0, max_operand],
joined by + - or *, as in the seed's 4-shot prompt. Each problem is tagged with its kinds
(operator, operand types, sign and length of the result), so evaluation says which fail."""

from __future__ import annotations

import random

from orchestrator.task import Problem
from orchestrator.tools.calculator import evaluate, format_number


def problem_kinds(a: str, op: str, b: str, answer: float, round_digits: int) -> dict[str, str]:
    """The kinds a problem belongs to (eval/by_kind/<kind>/<value>)."""
    def kind(x: str) -> str:
        return "dec" if "." in x else "int"

    result = format_number(answer, round_digits)
    return {
        "op": op,
        "operands": f"{kind(a)}{op}{kind(b)}",
        "sign": "negative" if answer < 0 else "positive",
        "result_digits": str(min(len(result.lstrip("-").replace(".", "")), 5)),
    }


def make_problem(rng: random.Random, max_operand: int, decimal_frac: float, round_digits: int) -> Problem:
    def operand() -> str:
        if rng.random() < decimal_frac:
            return f"{rng.randint(0, max_operand * 10 - 1) / 10:.1f}"
        return str(rng.randint(0, max_operand))

    a, op, b = operand(), rng.choice("+-*"), operand()
    expression = f"{a}{op}{b}"
    answer = round(evaluate(expression), round_digits)
    return Problem(question=f"What is {expression}?", answer=answer,
                   meta={"expression": expression, "kinds": problem_kinds(a, op, b, answer, round_digits)})
