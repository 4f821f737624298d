"""What a task supplies to the generic machinery.

A task is a class registered by name (``tasks/__init__.py``: ``TASKS``) with a ``Spec``
dataclass, its config schema (``conf/task/<name>.yaml`` holds the values). The
orchestrator builds it from the composed config and never imports a task by name. Each
task package keeps the same parts in the same order: data, prompt, tools, reward,
demonstrations.
"""

from __future__ import annotations

import abc
import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.rollout.episode import Episode, Source

# A demonstration for SFT: (source, text) spans; the loss covers "model" spans.
Demonstration = list[tuple[Source, str]]


@dataclass(frozen=True)
class Problem:
    """One question with what the reward needs to judge an answer. ``meta["kinds"]`` may tag
    it (``{"op": "*"}``): evaluation then reports accuracy per kind."""

    question: str
    answer: Any
    meta: dict[str, Any] = field(default_factory=dict)


def problem_meta(problem: Problem) -> dict[str, Any]:
    """What an episode carries of its problem, for the reward and for logging."""
    return {"question": problem.question, "answer": problem.answer, **problem.meta}


class Task(abc.ABC):
    """Data, prompt, tools, reward, demonstrations. Built from its ``Spec``."""

    # The task's config schema (a dataclass whose fields are conf/task/<name>.yaml's `spec:`).
    Spec: ClassVar[type]
    # Spec fields that name where caches live, not what the task is (left out of fingerprints).
    location_fields: ClassVar[tuple[str, ...]] = ()
    # False for a task trained only by SFT on its demonstrations (no rollouts of the policy).
    has_rollouts: ClassVar[bool] = True
    # True when the task has an evaluation run of its own (``mode=eval``: run_evaluation).
    has_evaluation: ClassVar[bool] = False

    def __init__(self, spec: Any, name: str) -> None:
        self.spec = spec
        self.name = name

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

    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools()]

    # --- reward ---
    @abc.abstractmethod
    def reward(self, episode: Episode) -> float:
        """Score the model's own text (``episode.model_text()``) against ``episode.meta``."""

    # --- demonstrations ---
    @abc.abstractmethod
    def demonstrations(self, n: int | None, rng: random.Random) -> list[Demonstration]:
        """Demonstrations for SFT (the tiny model's warm start, ``algo=sft``); ``n`` of them, or
        all the task has when ``n`` is None. Warm starts leave room for RL: only part use the tool."""

    def heldout_demonstrations(self) -> list[Demonstration] | None:
        """Demonstrations never trained on, for SFT's held-out loss (None: the task has none)."""
        return None

    def evaluate_policy(self, model: Any, tokenizer: Any, seed: int, step: int) -> dict[str, float]:
        """Held-out metrics a task without rollouts computes itself (ToolBench: the next step's
        parse, action and arguments); run on rank 0 at each evaluation. Empty by default."""
        return {}

    # --- the tiny model ---
    def tiny_tokenizer(self, cache_dir: str) -> Any | None:
        """The tokenizer a tiny model of this task uses; None: the byte-level one (one token per
        byte: right for short texts, wasteful for ToolBench's kilobytes of JSON)."""
        return None

    # --- an evaluation run of its own (mode=eval) ---
    def run_evaluation(self, ctx: Any) -> dict[str, float]:
        """``mode=eval``: evaluate ``ctx.model_path`` the task's own way (search over tool calls,
        a judge); Ray is up. Only for tasks with ``has_evaluation``."""
        raise NotImplementedError(f"task={self.name} has no evaluation run (mode=eval)")

    # --- checks and cache keys ---
    def problems(self) -> list[str]:
        """``task.spec.<key>: what is wrong`` lines found without starting anything (files that do
        not exist, a sandbox that cannot run here...): run before Ray starts."""
        return []

    def fingerprint(self) -> dict[str, Any]:
        """What changes the demonstrations: part of the tiny model's cache key."""
        values = dataclasses.asdict(self.spec) if dataclasses.is_dataclass(self.spec) else dict(self.spec)
        return {k: v for k, v in values.items() if k not in self.location_fields} | {"task": self.name}
