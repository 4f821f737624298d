"""The one interface between the worker loop and a learning algorithm.

The loop rolls out episodes (or reads demonstrations) and calls, every step::

    experience = algo.prepare(episodes)          # scores, advantages, targets; no gradients
    metrics = algo.update(experience, step)      # the gradient steps of this batch
    algo.state_dict() / algo.load_state_dict()   # what a checkpoint holds besides the weights

It never looks inside: PPO's value head and KL controller, GRPO's groups and SFT's schedule
are the algorithm's own business, as in verl where the trainer does not know the advantage
estimator. Every algorithm trains on the model's own tokens only (``Batch.action_mask``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from orchestrator.rollout.episode import Episode


@dataclass
class AlgoSetup:
    """What an algorithm is built from inside one Ray Train worker."""

    # The causal LM to train, on its device (float32 weights: the master copy).
    lm: nn.Module
    # A frozen copy of the starting policy, built on first use (KL terms need it, SFT does not).
    reference: Callable[[], nn.Module]
    pad_id: int
    device: torch.device
    rank: int
    world_size: int
    # Episodes per gradient step on this worker (derive(): the config's count over all workers).
    minibatch_size: int
    max_steps: int
    # Tokens per episode at most (task.env.max_length): Dr. GRPO's constant normaliser.
    max_length: int
    # The run's seed; each algorithm derives its own named streams from it.
    seed: int
    # DDP around a module when there are several workers; the identity otherwise.
    wrap: Callable[[nn.Module], nn.Module]
    # Autocast dtype of forward passes (None: the weights' own, float32).
    compute_dtype: torch.dtype | None = None


class Algorithm(abc.ABC):
    """A learning algorithm behind the loop's three calls (see the module docstring)."""

    # The dataclass of its config group (conf/algo/<name>.yaml).
    Config: ClassVar[type]
    # "rollouts": episodes of the policy against the tools; "demonstrations": the task's demos.
    learns_from: ClassVar[str] = "rollouts"

    def __init__(self, cfg: Any, setup: AlgoSetup) -> None:
        self.cfg = cfg
        self.setup = setup

    @staticmethod
    def episodes_per_prompt(cfg: Any) -> int:
        """Episodes drawn per prompt with config ``cfg``; they arrive next to each other in ``prepare``."""
        return 1

    @property
    def samples_per_prompt(self) -> int:
        return self.episodes_per_prompt(self.cfg)

    @property
    @abc.abstractmethod
    def policy(self) -> nn.Module:
        """The causal LM that rolls out and is saved (never DDP-wrapped)."""

    @abc.abstractmethod
    def prepare(self, episodes: list[Episode]) -> Any:
        """Turn a batch of episodes into what ``update`` trains on (no gradients)."""

    @abc.abstractmethod
    def update(self, experience: Any, step: int) -> dict[str, float]:
        """The gradient steps of one batch; ``step`` counts from 0 and sets any schedule."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything besides the policy's weights that a resumed run needs."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def autocast(self) -> Any:
        """A context that runs forward passes in ``compute_dtype`` (bf16 on GPUs) over fp32 weights."""
        dtype = self.setup.compute_dtype
        if dtype is None or dtype == torch.float32:
            return torch.autocast(device_type=self.setup.device.type, enabled=False)
        return torch.autocast(device_type=self.setup.device.type, dtype=dtype)
