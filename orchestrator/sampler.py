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

from orchestrator.lean_decoder import LeanDecoder, lean_decoder_for


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


class _TransformersStepper:
    """Any causal LM through its own forward and cache; finished rows leave the cache at once."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def start(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, capacity: int) -> torch.Tensor:
        self.attention = attention
        result = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        self.cache = result.past_key_values
        return result.logits[:, -1, :]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.attention = torch.cat([self.attention, self.attention.new_ones((self.attention.shape[0], 1))], dim=1)
        result = self.model(input_ids=tokens[:, None], attention_mask=self.attention, position_ids=positions[:, None],
                            past_key_values=self.cache, use_cache=True)
        self.cache = result.past_key_values
        return result.logits[:, -1, :]

    def worth_compacting(self, finished: int, rows: int) -> bool:
        return finished > 0

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.attention = self.attention[rows]


class _LeanStepper:
    """The lean Llama-family forward; finished rows are dropped once they are a quarter of the
    batch, since a drop copies the cache and a finished row costs little to carry."""

    def __init__(self, decoder: LeanDecoder) -> None:
        self.decoder = decoder

    def start(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, capacity: int) -> torch.Tensor:
        return self.decoder.start(input_ids, attention, positions, capacity)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.decoder.step(tokens, positions)

    def worth_compacting(self, finished: int, rows: int) -> bool:
        return finished * 4 >= rows

    def keep(self, rows: torch.Tensor) -> None:
        self.decoder.keep(rows)


@torch.no_grad()
def sample_turn(
    model: torch.nn.Module,
    sequences: list[list[int]],
    budgets: list[int],
    stop_ids: set[int],
    pad_id: int,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    lean: bool = True,
) -> list[list[int]]:
    """Continue each sequence by at most ``budgets[i]`` tokens; a stop id is kept and ends the row.

    Returns the new tokens per row (empty for a row whose budget is 0). ``lean`` uses
    :mod:`orchestrator.lean_decoder` where it supports the model (same arithmetic,
    far fewer Python calls per token); draws are the same either way, one per unfinished row.
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

    decoder = lean_decoder_for(model) if lean else None
    stepper = _LeanStepper(decoder) if decoder is not None else _TransformersStepper(model)
    logits = stepper.start(input_ids, attention, positions, width + max(budgets[i] for i in rows))
    next_pos = positions[:, -1] + 1  # (B,)
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long)
    # tensor row -> original index; -1 for a finished row still carried by the stepper
    owner = torch.tensor(rows, dtype=torch.long)
    remaining = torch.tensor([budgets[i] for i in rows], dtype=torch.long)
    writing = torch.ones(len(rows), dtype=torch.bool)

    while True:
        if bool(writing.all()):
            tokens = _draw(logits, params, generator)  # (B,)
        else:  # draw for unfinished rows only, so the random stream does not depend on the stepper
            tokens = torch.full((len(owner),), pad_id, dtype=torch.long, device=device)
            tokens[writing.to(device)] = _draw(logits[writing.to(device)], params, generator)
        drawn = tokens.cpu()
        for r, i in enumerate(owner.tolist()):
            if i >= 0:
                out[i].append(int(drawn[r]))
        remaining -= 1
        writing &= ~(torch.isin(drawn, stop) | (remaining <= 0))
        owner[~writing] = -1
        if not bool(writing.any()):
            break
        finished = int((~writing).sum())
        if finished and stepper.worth_compacting(finished, len(owner)):
            keep = writing.nonzero().squeeze(-1)
            stepper.keep(keep.to(device))
            owner, remaining, writing = owner[keep], remaining[keep], writing[keep]
            tokens, next_pos = tokens[keep.to(device)], next_pos[keep.to(device)]
        logits = stepper.step(tokens, next_pos)
        next_pos = next_pos + 1
    return out
