"""A safe arithmetic calculator: an AST walk over numbers and + - * / ** and parentheses.

Never ``eval``: the policy writes the query, and RL policies write anything.
"""

from __future__ import annotations

import ast
import math
import operator

from orchestrator.tools.base import ToolError

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str, *, max_exponent: int = 100, max_length: int = 200) -> float:
    """Evaluate an arithmetic expression; raise :class:`ToolError` for anything else."""
    if len(expression) > max_length:
        raise ToolError(f"expression longer than {max_length} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise ToolError(f"cannot parse {expression!r}") from err

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > max_exponent:
                raise ToolError(f"exponent {right} too large")
            if isinstance(node.op, ast.Div) and right == 0:
                raise ToolError("division by zero")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ToolError(f"unsupported expression {expression!r}")

    value = walk(tree)
    if isinstance(value, complex) or not math.isfinite(value):
        raise ToolError(f"{expression!r} has no finite real value")
    return value


def format_number(value: float, round_digits: int) -> str:
    """Round to ``round_digits`` decimals and drop a trailing ``.0`` (``12.0`` -> ``12``)."""
    rounded = round(float(value), round_digits)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{round_digits}f}".rstrip("0").rstrip(".")


class Calculator:
    """The calculator tool: ``<request><Calculator>12.1*3<call>`` -> ``36.3``."""

    description = "Evaluates an arithmetic expression with + - * / ** and parentheses."

    def __init__(self, name: str = "Calculator", round_digits: int = 2) -> None:
        self.name = name
        self.round_digits = round_digits

    def call(self, query: str) -> str:
        return format_number(evaluate(query), self.round_digits)
