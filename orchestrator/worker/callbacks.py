"""Hooks into the worker loop, named in the config (``trainer.callbacks``).

A callback is any object built from a Hydra ``_target_`` dict with an ``on_step_start``
method; the loop calls it before each step with a :class:`StepContext`. The project's own
tests use one to kill a worker at a given step (tests/faults.py); users can watch or stop a
run the same way, without editing the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StepContext:
    rank: int
    world_size: int
    step: int
    # True when this attempt began from a checkpoint (a restart after a failure or trainer.resume).
    resumed: bool
    # The run's seed (a sweep's trials differ by it).
    seed: int = 0


class Callback(Protocol):
    def on_step_start(self, ctx: StepContext) -> None: ...


def load_callbacks(configs: list[dict[str, Any]]) -> list[Callback]:
    import hydra.utils

    callbacks = []
    for config in configs:
        callback = hydra.utils.instantiate(dict(config))
        if not callable(getattr(callback, "on_step_start", None)):
            raise TypeError(f"trainer.callbacks: {config.get('_target_')} has no on_step_start(ctx) method")
        callbacks.append(callback)
    return callbacks
