"""Greedy next steps of a policy for held-out prompts, with the project's sampler.

The same batched KV-cache sampler as the RL rollouts (orchestrator.rollout.sampler): rows
stop on the end token at their own length, so a long step does not hold up a short one.
"""

from __future__ import annotations

from typing import Any

import torch

from orchestrator.rollout.sampler import SamplingParams, TurnSampler


def greedy_steps(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """The text each prompt is continued with, up to and including the end token."""
    model.eval()
    stop = {tokenizer.eos_token_id}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[str] = []
    for at in range(0, len(prompts), batch_size):
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[at : at + batch_size]]
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        budgets = [max(0, min(max_new_tokens, (limit or 10**9) - len(seq))) for seq in ids]
        sampler = TurnSampler(model, stop, pad, SamplingParams(temperature=0.0), torch.Generator())
        for tokens in sampler.sample(ids, budgets):
            out.append(tokenizer.decode(tokens, skip_special_tokens=False))
    return out
