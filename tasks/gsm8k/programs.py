"""Programs from GSM8K's ``<<48/2=24>>`` calculator annotations, for the tiny model's demonstrations.

Each annotation becomes one assignment, and a number that repeats an earlier result becomes
that result's variable::

    a=48/2
    b=48+a
    print(b)

What ``print`` shows is computed by the project's one arithmetic evaluator with Python's own
number types (orchestrator/tools/arithmetic.py: an AST walk, so demonstrations cost no
sandbox runs); tests/test_gsm8k.py checks it against the sandbox.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.tools.arithmetic import run_assignments
from tasks.gsm8k.data import NUMBER_TEXT, parse_answer

_ANNOTATION = re.compile(r"<<([^<>]*)=([^<>=]*)>>")
_EXPR_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+|[-+*/()])")
_QUESTION_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")


def run_arithmetic(program: str, max_exponent: int = 100) -> str | None:
    """What Python prints for a program of ``name=arithmetic`` lines and one final ``print(name)``."""
    return run_assignments(program, max_exponent=max_exponent)


def variable_names() -> Iterator[str]:
    """a, b, ..., z, a1, b1, ... (l and o are skipped: they read as 1 and 0)."""
    letters = [c for c in string.ascii_lowercase if c not in "lo"]
    yield from letters
    n = 1
    while True:
        yield from (f"{c}{n}" for c in letters)
        n += 1


def literal(token: str) -> str:
    """A number as the annotation wrote it, as a valid Python literal (``05`` -> ``5``, ``.5`` -> ``0.5``)."""
    if "." not in token:
        return str(int(token))
    whole, frac = token.split(".", 1)
    return f"{int(whole or '0')}.{frac or '0'}"


@dataclass(frozen=True)
class Annotation:
    expression: str
    result: float


def annotations(solution: str) -> list[Annotation] | None:
    """The ``<<expression=result>>`` steps of a GSM8K answer; None when one does not parse."""
    steps = []
    for expression, result in _ANNOTATION.findall(solution):
        try:
            steps.append(Annotation(expression, float(result.replace(",", "").strip())))
        except ValueError:
            return None
    return steps


def numbers_in(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in _QUESTION_NUMBER.findall(text)}


def _program_lines(steps: list[Annotation], link: bool) -> list[tuple[str, str]] | None:
    """(variable, expression) per step; with ``link``, a number equal to an earlier result
    becomes that result's variable (the latest one)."""
    names = variable_names()
    lines: list[tuple[str, str]] = []
    results: list[tuple[float, str]] = []
    for step in steps:
        pieces, pos = [], 0
        expression = step.expression.replace(",", "").rstrip()
        while pos < len(expression):
            match = _EXPR_TOKEN.match(expression, pos)
            if match is None:
                return None
            token, pos = match.group(1), match.end()
            if token[0].isdigit() or token[0] == ".":
                value = float(token)
                earlier = [name for result, name in results if result == value] if link else []
                token = earlier[-1] if earlier else literal(token)
            pieces.append(token)
        if not pieces:
            return None
        name = next(names)
        lines.append((name, "".join(pieces)))
        results.append((step.result, name))
    return lines


def annotation_program(solution: str, tolerance: float = 0.1) -> tuple[str, str] | None:
    """A program built from the solution's annotations and what it prints, or None.

    The program prints the last step whose value is the final answer (within ``tolerance``);
    the steps after it are dropped. Linking numbers to earlier variables can change a
    result when an annotation was rounded (``<<2/3=0.67>>``): then the literal numbers are
    used instead.
    """
    steps = annotations(solution)
    if not steps:
        return None
    answer = parse_answer(solution)
    for link in (True, False):
        lines = _program_lines(steps, link)
        if lines is None:
            return None
        for end in range(len(lines), 0, -1):
            body = "\n".join(f"{name}={expr}" for name, expr in lines[:end])
            program = f"{body}\nprint({lines[end - 1][0]})"
            printed = run_arithmetic(program)
            if printed is not None and NUMBER_TEXT.fullmatch(printed.strip()) and abs(float(printed) - answer) < tolerance:
                return program, printed
    return None
