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


def format_number(value: float, round_digits: int, min_decimals: int = 0) -> str:
    """Round to ``round_digits`` decimals and drop trailing zeros, keeping ``min_decimals``
    (``12.0`` -> ``12``; with ``min_decimals=1``: ``12.0``)."""
    rounded = round(float(value), round_digits)
    if rounded == int(rounded) and min_decimals == 0:
        return str(int(rounded))
    text = f"{rounded:.{max(round_digits, min_decimals)}f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0")
    decimals += "0" * max(0, min_decimals - len(decimals))
    return f"{whole}.{decimals}" if decimals else whole


def decimals_of(expression: str) -> int:
    """The most decimals any number in ``expression`` is written with (``12.5*3`` -> 1)."""
    import re

    return max((len(d) for d in re.findall(r"\d\.(\d+)", expression)), default=0)


class Calculator:
    """The calculator tool: ``<request><Calculator>12.1*3<call>`` -> ``36.3``.

    ``keep_decimals``: a result keeps at least as many decimals as the query's numbers have
    (``30*37.3`` -> ``1119.0``, not ``1119``), as a pocket calculator set to a fixed precision
    does. Decimal arithmetic then always answers in the same shape, which a small model copies
    far more reliably than an integer that turns up where it expects a decimal
    (docs/calculator.md).
    """

    def __init__(self, name: str = "Calculator", round_digits: int = 2, keep_decimals: bool = False) -> None:
        self.name = name
        self.round_digits = round_digits
        self.keep_decimals = keep_decimals

    def call(self, query: str) -> str:
        keep = min(decimals_of(query), self.round_digits) if self.keep_decimals else 0
        return format_number(evaluate(query), self.round_digits, min_decimals=keep)
