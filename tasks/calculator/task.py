"""Calculator: arithmetic with a calculator tool (the seed's first experiment).

Reward 1 when ``Result=`` in the model's own text is within ``tolerance`` of the truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator.config.fields import value
from orchestrator.rollout.episode import Episode
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.task.demonstrations import mix_demonstrations, total_demos
from tasks.calculator.data import make_problem
from tasks.calculator.demonstrations import calculator_demo
from tasks.calculator.prompt import prompt
from tasks.calculator.reward import exact_match_reward
from tasks.calculator.tools import calculator_tool


@dataclass
class CalculatorSpec:
    """``conf/task/calculator.yaml`` under ``spec:`` (the values, each with a comment, are there)."""

    tool_name: str = value()
    max_operand: int = value(ge=1)
    decimal_frac: float = value(ge=0, le=1)
    round_digits: int = value(ge=0, le=10)
    tool_keeps_decimals: bool = value()
    tolerance: float = value(gt=0)
    num_eval: int = value(ge=1)
    eval_seed: int = value(ge=0)
    demo_tool_frac: float = value(ge=0, le=1)
    demo_direct_correct_frac: float = value(ge=0, le=1)
    demo_practice_frac: float = value(ge=0)


class CalculatorTask(Task):
    Spec = CalculatorSpec

    def __init__(self, spec: CalculatorSpec, name: str = "calculator") -> None:
        super().__init__(spec, name)
        self._eval: list[Problem] | None = None

    # data
    def _make(self, rng: random.Random) -> Problem:
        s = self.spec
        return make_problem(rng, s.max_operand, s.decimal_frac, s.round_digits)

    def eval_problems(self) -> list[Problem]:
        if self._eval is None:
            rng = random.Random(self.spec.eval_seed)
            self._eval = [self._make(rng) for _ in range(self.spec.num_eval)]
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
        return prompt(problem.question, self.spec.tool_name, few_shot)

    # tools
    def tools(self) -> list[dict[str, Any]]:
        return [calculator_tool(self.spec.tool_name, self.spec.round_digits, self.spec.tool_keeps_decimals)]

    # reward
    def reward(self, episode: Episode) -> float:
        return exact_match_reward(episode.model_text(), episode.meta["answer"], self.spec.tolerance)

    # demonstrations
    def demonstrations(self, n: int | None, rng: random.Random) -> list[Demonstration]:
        s = self.spec
        n = n or 20000
        train = self.train_problems(rng.randrange(2**31))
        problems = [next(train) for _ in range(total_demos(n, s.demo_practice_frac))]
        demo = calculator_demo(s.tool_name, s.round_digits, s.demo_direct_correct_frac,
                               lambda p: self.prompt(p, few_shot=False), s.tool_keeps_decimals)
        return mix_demonstrations(problems, n, s.demo_tool_frac, demo, rng)
