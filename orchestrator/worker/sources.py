"""Where a step's episodes come from: rollouts of the policy, or the task's demonstrations.

Both are functions of (seed, rank, step) alone, so a run resumed at step k draws exactly
the batches an uninterrupted run would have drawn from k on.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import torch

from orchestrator.rollout.demonstration import to_episodes
from orchestrator.rollout.environment import TextEnvironment
from orchestrator.rollout.episode import Episode
from orchestrator.rollout.sampler import SamplingParams
from orchestrator.seeding import derived_seed
from orchestrator.task import Problem, Task, problem_meta


class RolloutSource:
    """Episodes of the policy on this worker's stream of training problems.

    ``samples_per_prompt`` episodes per problem, next to each other (GRPO's groups)."""

    def __init__(self, env: TextEnvironment, task: Task, seed: int, rank: int, prompts_per_step: int,
                 samples_per_prompt: int, temperature: float, few_shot: bool, start_step: int) -> None:
        self.env, self.task, self.seed, self.rank = env, task, seed, rank
        self.prompts_per_step, self.samples_per_prompt = prompts_per_step, samples_per_prompt
        self.params = SamplingParams(temperature=temperature)
        self.few_shot = few_shot
        stream: Iterator[Problem] = task.train_problems(derived_seed(seed, "problems", rank))
        self.stream = itertools.islice(stream, start_step * prompts_per_step, None)
        self.generator = torch.Generator()

    def batch(self, model: torch.nn.Module, step: int) -> list[Episode]:
        problems = [next(self.stream) for _ in range(self.prompts_per_step)]
        problems = [p for p in problems for _ in range(self.samples_per_prompt)]
        self.generator.manual_seed(derived_seed(self.seed, "rollout", self.rank, step))
        model.eval()
        return self.env.rollout(model, [self.task.prompt(p, self.few_shot) for p in problems],
                                [problem_meta(p) for p in problems], self.params, self.generator)


# Steps of one length group (Hugging Face's LengthGroupedSampler sorts 50 batches at a time).
STEPS_PER_LENGTH_GROUP = 50


class DemonstrationSource:
    """The task's demonstrations, tokenized once, in a new seeded order every epoch.

    Each worker takes every ``world_size``-th demonstration of the epoch's order, so the
    workers of a step see disjoint demonstrations and together the same as one worker would.
    ``group_by_length``: the shuffled order is cut into groups of STEPS_PER_LENGTH_GROUP steps,
    each group sorted by length and its steps shuffled again, so a step's demonstrations are of
    similar lengths (a batch pads to its longest) while the epoch's order stays random."""

    def __init__(self, demos: list[Any], tokenizer: Any, max_length: int, seed: int, rank: int, world_size: int,
                 per_worker: int, group_by_length: bool = False) -> None:
        self.episodes = to_episodes(tokenizer, demos, max_length)
        self.seed, self.rank, self.world_size, self.per_worker = seed, rank, world_size, per_worker
        self.group_by_length = group_by_length
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.episodes)))
            rng = random.Random(derived_seed(self.seed, "demonstration_order", epoch))
            rng.shuffle(order)
            if self.group_by_length:
                order = self._grouped(order, rng)
            self._orders = {epoch: order}  # steps only move forward: one epoch's order at a time
        return self._orders[epoch]

    def _grouped(self, order: list[int], rng: random.Random) -> list[int]:
        step = self.per_worker * self.world_size
        span = step * STEPS_PER_LENGTH_GROUP
        grouped = []
        for start in range(0, len(order), span):
            group = sorted(order[start:start + span], key=lambda i: len(self.episodes[i]), reverse=True)
            full = len(group) - len(group) % step
            steps = [group[k:k + step] for k in range(0, full, step)]
            rng.shuffle(steps)
            grouped += [i for s in steps for i in s] + group[full:]  # a partial step stays last
        return grouped

    def batch(self, model: torch.nn.Module, step: int) -> list[Episode]:
        first = step * self.per_worker * self.world_size
        picked = []
        for k in range(first + self.rank, first + self.per_worker * self.world_size, self.world_size):
            epoch, offset = divmod(k, len(self.episodes))
            picked.append(self.episodes[self._order(epoch)[offset]])
        return picked
