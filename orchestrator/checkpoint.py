"""Checkpoints: the model in Hugging Face format plus everything needed to continue.

Layout of a checkpoint folder::

    model/          save_pretrained (weights, config, tokenizer): loadable on its own
    value_head.pt   the value head's state dict
    state.pt        optimizer, KL coefficient, step, RNG states, W&B run id
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    step: int
    run_id: str
    learner: dict[str, Any]
    rng: dict[str, Any]
    metrics: dict[str, float]


def rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def save_checkpoint(folder: Path, policy: Any, tokenizer: Any, state: TrainState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    policy.lm.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    torch.save(policy.v_head.state_dict(), folder / "value_head.pt")
    torch.save(
        {"step": state.step, "run_id": state.run_id, "learner": state.learner, "rng": state.rng, "metrics": state.metrics},
        folder / "state.pt",
    )


def load_state(folder: Path) -> TrainState:
    raw = torch.load(folder / "state.pt", weights_only=False)
    return TrainState(raw["step"], raw["run_id"], raw["learner"], raw["rng"], raw.get("metrics", {}))


def find_latest(root: Path) -> Path | None:
    """The newest checkpoint folder (one with state.pt) anywhere below ``root``."""
    found = [p.parent for p in Path(root).glob("**/state.pt")]
    if not found:
        return None
    return max(found, key=lambda p: (p / "state.pt").stat().st_mtime)
