"""One safe arithmetic evaluator: an AST walk over numbers, names and + - * / // % **.

Never ``eval``: the policy writes the expression, and RL policies write anything. The same
walk serves the calculator tool (an expression) and GSM8K's demonstrations (``name=expr``
lines ending in ``print(name)``, whose output must be exactly what Python prints), so both
use Python's own number types and operators.

Sizes are bounded before they are computed: a power whose result would have more than
``max_bits`` bits, or any intermediate integer that does, is refused at once. Without the
bound ``(((9**99)**99)**99)**99`` (23 characters) held the GIL for more than 10 s.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping

BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
CALCULATOR_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)

Number = int | float


class ArithmeticRefused(ArithmeticError):
    """The expression is not plain arithmetic, or its result would be too large to compute."""


def _bits(value: Number) -> float:
    if isinstance(value, int):
        return float(value.bit_length())
    return math.log2(abs(value)) if value not in (0.0,) and math.isfinite(value) else 0.0


def _checked_pow(base: Number, exponent: Number, max_exponent: float, max_bits: int) -> Number:
    if abs(exponent) > max_exponent:
        shown = str(exponent) if len(str(exponent)) <= 20 else f"of {len(str(exponent))} digits"
        raise ArithmeticRefused(f"exponent {shown} too large (at most {max_exponent:g})")
    if isinstance(exponent, (int, float)) and exponent > 0 and _bits(base) * exponent > max_bits:
        raise ArithmeticRefused(f"result too large (more than {max_bits} bits)")
    return operator.pow(base, exponent)


def evaluate_node(node: ast.AST, names: Mapping[str, Number] | None = None, *,
                  ops: tuple[type, ...] = tuple(BINARY), max_exponent: float = 100, max_bits: int = 4096) -> Number:
    """The value of an expression node; :class:`ArithmeticRefused` for anything else.

    ``ZeroDivisionError`` and ``OverflowError`` propagate (both are ArithmeticErrors)."""
    names = names or {}

    def walk(n: ast.AST) -> Number:
        if isinstance(n, ast.Expression):
            return walk(n.body)
        if isinstance(n, ast.Constant) and type(n.value) in (int, float):
            return n.value
        if isinstance(n, ast.Name) and n.id in names:
            return names[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in BINARY and isinstance(n.op, ops):
            left, right = walk(n.left), walk(n.right)
            if isinstance(n.op, ast.Pow):
                value = _checked_pow(left, right, max_exponent, max_bits)
            else:
                value = BINARY[type(n.op)](left, right)
            if isinstance(value, int) and value.bit_length() > max_bits:
                raise ArithmeticRefused(f"result too large (more than {max_bits} bits)")
            return value
        if isinstance(n, ast.UnaryOp) and type(n.op) in UNARY:
            return UNARY[type(n.op)](walk(n.operand))
        raise ArithmeticRefused(f"unsupported: {ast.dump(n)[:60]}")

    return walk(node)


def evaluate_expression(expression: str, *, ops: tuple[type, ...] = CALCULATOR_OPS, max_length: int = 200,
                        **bounds: float) -> float:
    """A real, finite value of ``expression`` (the calculator's rule)."""
    if len(expression) > max_length:
        raise ArithmeticRefused(f"expression longer than {max_length} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise ArithmeticRefused(f"cannot parse {expression!r}") from err
    value = evaluate_node(tree, ops=ops, **bounds)
    if isinstance(value, complex) or not math.isfinite(value):
        raise ArithmeticRefused(f"{expression!r} has no finite real value")
    return value


def run_assignments(program: str, **bounds: float) -> str | None:
    """What Python prints for ``name=arithmetic`` lines and one final ``print(name)``; None for
    anything else, or for arithmetic Python would reject (or that is too large to compute)."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    env: dict[str, Number] = {}
    *assignments, last = tree.body or [None]
    try:
        for stmt in assignments:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                return None
            env[stmt.targets[0].id] = evaluate_node(stmt.value, env, **bounds)
        if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Name)
                and last.value.func.id == "print" and len(last.value.args) == 1 and not last.value.keywords):
            return None
        value = evaluate_node(last.value.args[0], env, **bounds)
    except (ArithmeticError, ValueError):  # ZeroDivisionError, OverflowError, ArithmeticRefused
        return None
    if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return f"{value}\n"
