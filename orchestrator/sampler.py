"""Batched sampling with a KV cache that stops each row on token ids.

One call generates one turn for every active episode: rows are left-padded, positions
come from the attention mask (the training forward uses the same positions), each row
stops on its own at a stop id or its own token budget, and finished rows are dropped
from the cache so the batch only pays for rows still writing.

Why not ``model.generate``: we need per-row budgets (``max_length`` differs by row after
tool output), stop on ids, and the sampled ids exactly as drawn; generate's per-step
machinery also costs more than the forward pass of a small model on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings for one turn. ``temperature=0`` is greedy."""

    temperature: float = 1.0
    top_k: int = 0


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: the first real token of every row is 0."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _draw(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    if params.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / params.temperature
    if params.top_k > 0:
        kth = torch.topk(logits, params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample_turn(
    model: torch.nn.Module,
    sequences: list[list[int]],
    budgets: list[int],
    stop_ids: set[int],
    pad_id: int,
    params: SamplingParams,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Continue each sequence by at most ``budgets[i]`` tokens; a stop id is kept and ends the row.

    Returns the new tokens per row (empty for a row whose budget is 0).
    """
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in sequences]
    rows = [i for i, b in enumerate(budgets) if b > 0]
    if not rows:
        return out
    width = max(len(sequences[i]) for i in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        seq = sequences[i]
        input_ids[r, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        attention[r, width - len(seq):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = positions_from_mask(attention)

    result = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
    cache = result.past_key_values
    logits = result.logits[:, -1, :]
    next_pos = positions[:, -1] + 1  # (B,)
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    live = torch.tensor(rows, dtype=torch.long)  # live row r -> original index
    remaining = torch.tensor([budgets[i] for i in rows], dtype=torch.long)

    while True:
        tokens = _draw(logits, params, generator)  # (B,)
        tok_list = tokens.tolist()
        for r, i in enumerate(live.tolist()):
            out[i].append(tok_list[r])
        remaining -= 1
        finished = torch.isin(tokens.cpu(), stop.cpu()) | (remaining <= 0)
        if bool(finished.all()):
            break
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep.to(device))
            live, remaining = live[keep], remaining[keep]
            tokens, attention, next_pos = tokens[keep.to(device)], attention[keep.to(device)], next_pos[keep.to(device)]
        attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
        result = model(
            input_ids=tokens[:, None],
            attention_mask=attention,
            position_ids=next_pos[:, None],
            past_key_values=cache,
            use_cache=True,
        )
        cache = result.past_key_values
        logits = result.logits[:, -1, :]
        next_pos = next_pos + 1
    return out
