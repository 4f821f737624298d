"""Checkpoints: the model in Hugging Face format plus everything needed to continue.

Layout of a checkpoint folder::

    model/          save_pretrained (weights, config, tokenizer): loadable on its own
    state.pt        step, W&B run id, the algorithm's state (optimizer, value head, KL
                    coefficient...), RNG states, the last metrics

Tensors are loaded onto the CPU first (``map_location``): a checkpoint written on a GPU
resumes on a CPU, and each rank moves what it needs to its own device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"


@dataclass
class TrainState:
    step: int
    run_id: str
    algo: dict[str, Any]
    rng: dict[str, Any]
    metrics: dict[str, float]


def rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"].cpu())


def save_checkpoint(folder: Path, policy: Any, tokenizer: Any, state: TrainState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    torch.save({"step": state.step, "run_id": state.run_id, "algo": state.algo, "rng": state.rng,
                "metrics": state.metrics}, folder / STATE_FILE)


def load_state(folder: Path) -> TrainState:
    raw = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
    return TrainState(raw["step"], raw["run_id"], raw["algo"], raw["rng"], raw.get("metrics", {}))


def read_state(location: str) -> TrainState:
    """The state of a checkpoint folder or URI (``s3://``, ``gs://``, ``file://``: pyarrow's
    filesystems, as Ray Train reads them)."""
    if "://" not in location:
        return load_state(Path(location))
    from ray.train import Checkpoint

    with Checkpoint(path=location).as_directory() as folder:
        return load_state(Path(folder))


def open_checkpoint(location: str):
    """A Ray Train Checkpoint of a local folder or a URI."""
    from ray.train import Checkpoint

    return Checkpoint(path=location) if "://" in location else Checkpoint.from_directory(location)


def find_latest(root: Path) -> Path | None:
    """The newest checkpoint folder (one with state.pt) anywhere below ``root``."""
    found = [p.parent for p in Path(root).glob(f"**/{STATE_FILE}")]
    if not found:
        return None
    return max(found, key=lambda p: (p / STATE_FILE).stat().st_mtime)
