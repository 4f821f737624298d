"""The calculator tool: ``<request><Calculator>12.1*3<call>`` -> ``36.3``.

Arithmetic goes through the project's one safe evaluator (orchestrator/tools/arithmetic.py).
"""

from __future__ import annotations

from orchestrator.tools.arithmetic import ArithmeticRefused, evaluate_expression
from orchestrator.tools.base import ToolError


def evaluate(expression: str, *, max_exponent: int = 100, max_length: int = 200, max_bits: int = 4096) -> float:
    """Evaluate an arithmetic expression (+ - * / ** and parentheses); :class:`ToolError` for
    anything else, a division by zero, or a result too large to compute (more than ``max_bits``)."""
    try:
        return evaluate_expression(expression, max_length=max_length, max_exponent=max_exponent, max_bits=max_bits)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError(f"{expression!r} overflows") from None
    except ArithmeticRefused as err:
        raise ToolError(str(err)) from None


def format_number(value: float, round_digits: int) -> str:
    """Round to ``round_digits`` decimals and drop a trailing ``.0`` (``12.0`` -> ``12``)."""
    rounded = round(float(value), round_digits)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{round_digits}f}".rstrip("0").rstrip(".")


class Calculator:
    """The calculator tool: ``<request><Calculator>12.1*3<call>`` -> ``36.3``."""

    def __init__(self, name: str = "Calculator", round_digits: int = 2) -> None:
        self.name = name
        self.round_digits = round_digits

    def call(self, query: str) -> str:
        return format_number(evaluate(query), self.round_digits)
