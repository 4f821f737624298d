"""What a task supplies to the generic machinery, and the registry that finds tasks.

A task is built by Hydra from ``conf/task/<name>.yaml`` (its ``_target_``); the
orchestrator never imports a task by name. Each task module keeps the same four parts in
the same order: data, prompt, tools, reward (plus demonstrations for the tiny model).
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.episode import Episode, Source


@dataclass(frozen=True)
class Problem:
    """One question with what the reward needs to judge an answer."""

    question: str
    answer: Any
    meta: dict[str, Any] = field(default_factory=dict)


# A demonstration for the warm start: (source, text) spans; the loss covers "model" spans.
Demonstration = list[tuple[Source, str]]


class Task(abc.ABC):
    """Data, prompt, tools, reward. Subclasses are plain classes configured by Hydra."""

    name: str = "task"

    # --- data ---
    @abc.abstractmethod
    def train_problems(self, seed: int) -> Iterator[Problem]:
        """An endless stream of training problems in an order fixed by ``seed``."""

    @abc.abstractmethod
    def eval_problems(self) -> list[Problem]:
        """The held-out set, the same for every run seed (so runs compare)."""

    # --- prompt ---
    @abc.abstractmethod
    def prompt(self, problem: Problem, few_shot: bool) -> str:
        """The text the model continues. ``few_shot`` for hub models, bare for the tiny one."""

    # --- tools ---
    @abc.abstractmethod
    def tools(self) -> list[dict[str, Any]]:
        """Hydra configs (``_target_`` + kwargs, including ``name``) of the tools it needs."""

    # --- reward ---
    @abc.abstractmethod
    def reward(self, episode: Episode) -> float:
        """Score the model's own text (``episode.model_text()``) against ``episode.meta``."""

    # --- warm start ---
    @abc.abstractmethod
    def demonstrations(self, n: int, rng: random.Random) -> list[Demonstration]:
        """Episodes for the tiny model's SFT; only part of them use the tool, so RL has work to do."""

    def fingerprint(self) -> dict[str, Any]:
        """What changes the demonstrations: part of the tiny model's cache key."""
        return {"task": self.name}


def problem_meta(problem: Problem) -> dict[str, Any]:
    """What an episode carries of its problem, for the reward and for logging."""
    return {"question": problem.question, "answer": problem.answer, **problem.meta}
