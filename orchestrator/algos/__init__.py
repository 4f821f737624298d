"""Learning algorithms behind one interface (:class:`orchestrator.algos.base.Algorithm`).

``algo=<name>`` picks one of :data:`ALGORITHMS`. Adding an algorithm: its module here, its
``conf/algo/<name>.yaml``, and one line below.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.algos.base import AlgoSetup, Algorithm
from orchestrator.algos.grpo import GRPO
from orchestrator.algos.ppo import PPO
from orchestrator.algos.sft import SFT

ALGORITHMS: dict[str, type[Algorithm]] = {
    "ppo": PPO,
    "grpo": GRPO,
    "sft": SFT,
}


def build_algorithm(algo_cfg: Any, lm: Any, tokenizer: Any, ctx: Any, derived: Any, cfg: Any) -> Algorithm:
    """The algorithm ``algo_cfg.name`` names, set up for this worker (``ctx``: its rank and device)."""
    from orchestrator.models.loading import compute_dtype

    def reference() -> Any:
        # Called while the algorithm is built, before any update or resume: a copy of the start.
        return copy.deepcopy(lm)

    def wrap(module: Any) -> Any:
        if ctx.world_size == 1:
            return module
        import ray.train.torch

        return ray.train.torch.prepare_model(module, move_to_device=False, parallel_strategy=cfg.trainer.parallel)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    setup = AlgoSetup(lm=lm, reference=reference, pad_id=pad_id, device=ctx.device, rank=ctx.rank,
                      world_size=ctx.world_size, minibatch_size=derived.minibatch_per_worker,
                      max_steps=derived.max_steps, max_length=derived.max_length, seed=derived.seed, wrap=wrap,
                      compute_dtype=compute_dtype(cfg.model.dtype))
    return ALGORITHMS[algo_cfg.name](algo_cfg, setup)


__all__ = ["ALGORITHMS", "AlgoSetup", "Algorithm", "build_algorithm"]
