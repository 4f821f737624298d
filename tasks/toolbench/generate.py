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


def constrained_steps(model: Any, tokenizer: Any, prompts: list[str], functions: list[Any], max_new_tokens: int,
                      batch_size: int = 16) -> list[str]:
    """As :func:`greedy_steps`, with each step's Action line limited to its offered functions
    (``functions[i]``, OpenAI-style schemas; tasks/toolbench/constrain.py)."""
    from tasks.toolbench.constrain import ActionNameConstraint, function_names
    from tasks.toolbench.inference.sampling import SamplingConfig, cut_at_stop, generate_rows

    model.eval()
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[str] = []
    for at in range(0, len(prompts), batch_size):
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[at : at + batch_size]]
        if limit:  # the end of an over-long prompt, as the inference policy (and ToolBench) keeps it
            ids = [seq[-max(1, limit - max_new_tokens):] for seq in ids]
        constraints = [ActionNameConstraint(tokenizer, function_names(f)) if function_names(f) else None
                       for f in functions[at : at + batch_size]]
        rows = generate_rows(model, tokenizer, ids, [0] * len(ids), cfg, (), constraints)
        eos = tokenizer.eos_token
        for new in rows:
            text = tokenizer.decode(new, skip_special_tokens=False)
            out.append(cut_at_stop(text, (eos,)) + eos if eos and eos in text else text)
    return out
