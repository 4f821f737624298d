"""Learning-rate schedules as functions of the step alone, so a resumed run needs no saved state."""

from __future__ import annotations

import math


def linear_anneal(lr: float, step: int, max_steps: int) -> float:
    """``lr`` falling linearly to 0 over ``max_steps`` (CleanRL's ``anneal_lr``)."""
    return lr * (1.0 - step / max(max_steps, 1))


def warmup_cosine(lr: float, step: int, max_steps: int, warmup_steps: int, shape: str = "cosine") -> float:
    """Linear warm-up from 0 over ``warmup_steps``, then ``shape`` (cosine | linear | constant) down
    to 0 at ``max_steps``: step for step the schedules of Hugging Face's Trainer (TRL's SFTTrainer)."""
    if step < warmup_steps:
        return lr * step / warmup_steps
    progress = (step - warmup_steps) / max(max_steps - warmup_steps, 1)
    if shape == "constant":
        return lr
    if shape == "linear":
        return lr * max(0.0, 1.0 - progress)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
