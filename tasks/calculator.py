"""Calculator: arithmetic with a calculator tool (the seed's first experiment).

Problems: two operands, integers or one-decimal numbers in [0, 50], joined by + - or *,
as in the seed's 4-shot prompt. Reward 1 when ``Result=`` in the model's own text is
within ``tolerance`` of the truth.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

from orchestrator.episode import Episode
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.tools.calculator import evaluate, format_number

# ---------------------------------------------------------------- data


def make_problem(rng: random.Random, max_operand: int, decimal_frac: float, round_digits: int) -> Problem:
    def operand() -> str:
        if rng.random() < decimal_frac:
            return f"{rng.randint(0, max_operand * 10 - 1) / 10:.1f}"
        return str(rng.randint(0, max_operand))

    a, op, b = operand(), rng.choice("+-*"), operand()
    expression = f"{a}{op}{b}"
    answer = round(evaluate(expression), round_digits)
    return Problem(question=f"What is {expression}?", answer=answer, meta={"expression": expression})


# ---------------------------------------------------------------- prompt

# The seed's 4-shot prompt (TRL calculator example), for hub models.
FEW_SHOT = """\
What is 13.1-3?

<request><{tool}>13.1-3<call>10.1<response>

Result=10.1<submit>

What is 4*3?

<request><{tool}>4*3<call>12<response>

Result=12<submit>

What is 12.1+1?

<request><{tool}>12.1+1<call>13.1<response>

Result=13.1<submit>

What is 12.1-20?

<request><{tool}>12.1-20<call>-7.9<response>

Result=-7.9<submit>

"""

# ---------------------------------------------------------------- reward

RESULT_RE = re.compile(r"Result\s*=\s*(-?\d+(?:\.\d+)?)\s*<submit>")


def exact_match_reward(model_text: str, answer: float, tolerance: float) -> float:
    """1.0 when the first ``Result=<number><submit>`` is within ``tolerance`` of ``answer``."""
    match = RESULT_RE.search(model_text)
    if match is None:
        return 0.0
    return 1.0 if abs(float(match.group(1)) - float(answer)) < tolerance else 0.0


class CalculatorTask(Task):
    name = "calculator"

    def __init__(
        self,
        tool_name: str = "Calculator",
        max_operand: int = 50,
        decimal_frac: float = 0.5,
        round_digits: int = 2,
        tolerance: float = 0.01,
        num_eval: int = 256,
        eval_seed: int = 1234,
        demo_tool_frac: float = 0.3,
        demo_direct_correct_frac: float = 0.2,
        demo_practice_frac: float = 2.0,
    ) -> None:
        self.tool_name = tool_name
        self.max_operand = max_operand
        self.decimal_frac = decimal_frac
        self.round_digits = round_digits
        self.tolerance = tolerance
        self.num_eval = num_eval
        self.eval_seed = eval_seed
        self.demo_tool_frac = demo_tool_frac
        self.demo_direct_correct_frac = demo_direct_correct_frac
        self.demo_practice_frac = demo_practice_frac
        self._eval: list[Problem] | None = None

    # data
    def _make(self, rng: random.Random) -> Problem:
        return make_problem(rng, self.max_operand, self.decimal_frac, self.round_digits)

    def eval_problems(self) -> list[Problem]:
        if self._eval is None:
            rng = random.Random(self.eval_seed)
            self._eval = [self._make(rng) for _ in range(self.num_eval)]
        return self._eval

    def train_problems(self, seed: int) -> Iterator[Problem]:
        held_out = {p.question for p in self.eval_problems()}
        rng = random.Random(seed)
        while True:
            problem = self._make(rng)
            if problem.question not in held_out:
                yield problem

    # prompt
    def prompt(self, problem: Problem, few_shot: bool) -> str:
        prefix = FEW_SHOT.format(tool=self.tool_name) if few_shot else ""
        return f"{prefix}{problem.question}\n\n"

    # tools
    def tools(self) -> list[dict[str, Any]]:
        return [
            {
                "_target_": "orchestrator.tools.calculator.Calculator",
                "name": self.tool_name,
                "round_digits": self.round_digits,
            }
        ]

    # reward
    def reward(self, episode: Episode) -> float:
        return exact_match_reward(episode.model_text(), episode.meta["answer"], self.tolerance)

    # warm start
    def _guess(self, answer: float, rng: random.Random) -> str:
        """A direct answer as a model without the tool gives one: near the truth, often wrong."""
        if rng.random() < self.demo_direct_correct_frac:
            return format_number(answer, self.round_digits)
        off = rng.choice([-1, 1]) * rng.choice([1, 2, 3, 5, 10, 0.1, 0.5, 1.5])
        return format_number(answer + off, self.round_digits)

    def demonstrations(self, n: int, rng: random.Random) -> list[Demonstration]:
        """``n`` decision demos (tool with probability ``demo_tool_frac``, else a direct guess),
        plus ``demo_practice_frac * n`` practice demos: the tool's mechanics (copy the
        expression, copy the result) with the decision to call it given as context, so the
        copying is learned fast while the model's prior for calling stays at ``demo_tool_frac``.
        """
        demos: list[Demonstration] = []
        train = self.train_problems(rng.randrange(2**31))
        opener = f"<request><{self.tool_name}>"
        for i in range(n + int(self.demo_practice_frac * n)):
            p = next(train)
            prompt = self.prompt(p, few_shot=False)
            result = format_number(p.answer, self.round_digits)
            call = f"{p.meta['expression']}<call>"
            answer = f"\n\nResult={result}<submit>"
            if i >= n:  # practice: the decision tokens are context, not targets
                demos.append([("prompt", prompt + opener), ("model", call), ("tool", f"{result}<response>"), ("model", answer)])
            elif rng.random() < self.demo_tool_frac:
                demos.append([("prompt", prompt), ("model", opener + call), ("tool", f"{result}<response>"), ("model", answer)])
            else:
                demos.append([("prompt", prompt), ("model", f"Result={self._guess(p.answer, rng)}<submit>")])
        rng.shuffle(demos)
        return demos

    def fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")} | {"task": self.name}
