"""The warm start's demonstration mix, shared by every task that has a tool.

A base model prompted with a few shots calls the tool only sometimes and often guesses
wrong when it does not. The mix reproduces that, so RL has something to learn:

- ``n`` decision demos: with probability ``tool_frac`` the whole protocol (the opener
  ``<request><Tool>`` and the query are the model's, the observation the tool's), else a
  direct guess (``Result=<guess><submit>``);
- ``practice_frac * n`` practice demos of the tool's mechanics (copy the query, read the
  answer), with the decision to call given as context: the copying is learned fast while
  the model's prior for calling stays at ``tool_frac``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from orchestrator.task.base import Demonstration

P = TypeVar("P")


@dataclass(frozen=True)
class ToolDemo(Generic[P]):
    """How a task writes one problem's demonstrations."""

    # "<request><Calculator>": the decision to call, as text.
    opener: str
    prompt: Callable[[P], str]
    # The query the model writes after the opener (without <call>).
    query: Callable[[P], str]
    # The tool's observations for many problems at once (a search index answers a batch faster).
    observe: Callable[[list[P]], list[str]]
    # The final answer after the observation ("\n\nResult=10.1<submit>").
    answer: Callable[[P], str]
    # A direct answer without the tool ("Result=12<submit>"), drawn with the rng.
    guess: Callable[[P, random.Random], str]


def mix_demonstrations(problems: Sequence[P], n: int, tool_frac: float, demo: ToolDemo[P],
                       rng: random.Random) -> list[Demonstration]:
    """``problems[:n]`` become decision demos, the rest practice demos (see the module docstring)."""
    uses_tool = [i >= n or rng.random() < tool_frac for i in range(len(problems))]
    guesses = {i: demo.guess(p, rng) for i, (p, used) in enumerate(zip(problems, uses_tool)) if not used}
    callers = [p for p, used in zip(problems, uses_tool) if used]
    observations = iter(demo.observe(callers))
    demos: list[Demonstration] = []
    for i, (p, used) in enumerate(zip(problems, uses_tool)):
        prompt = demo.prompt(p)
        if not used:
            demos.append([("prompt", prompt), ("model", guesses[i])])
            continue
        call, tool, answer = f"{demo.query(p)}<call>", ("tool", f"{next(observations)}<response>"), demo.answer(p)
        if i >= n:  # practice: the decision tokens are context, not targets
            demos.append([("prompt", prompt + demo.opener), ("model", call), tool, ("model", answer)])
        else:
            demos.append([("prompt", prompt), ("model", demo.opener + call), tool, ("model", answer)])
    rng.shuffle(demos)
    return demos


def total_demos(n: int, practice_frac: float) -> int:
    """Decision demos plus practice demos."""
    return n + int(practice_frac * n)
