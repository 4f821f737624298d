"""Batched generation for many prompts at once, each row with its own random generator.

``transformers``' ``generate`` draws every row from one generator, so a row's tokens depend
on which other rows share its batch. Here row i samples with a generator seeded by
``seeds[i]`` (the policy derives it from the run's seed, the query and the call), so a
query's text does not depend on its neighbours; greedy decoding (temperature 0) needs no
generator at all. Rows are left-padded, share one KV cache, and stop at an end token, a
stop string, or ``max_new_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import torch


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 512
    # 0 decodes greedily; otherwise softmax(logits / temperature), cut to top_p.
    temperature: float = 0.0
    top_p: float = 1.0


class TokenConstraint(Protocol):
    def allowed(self, written: str) -> list[int] | None:
        """Token ids the row may write next given its text so far; None: any."""


def pick_token(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> int:
    """One token from a row's logits (shape (V,))."""
    if cfg.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / cfg.temperature, dim=-1)
    if cfg.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < cfg.top_p  # (V,) the smallest top set
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def generate_rows(model: Any, tokenizer: Any, prompts: list[list[int]], seeds: list[int], cfg: SamplingConfig,
                  stop_strings: tuple[str, ...] = (),
                  constraints: Sequence[TokenConstraint | None] | None = None) -> list[list[int]]:
    """New token ids for each prompt (the stop token or string included; the caller cuts).
    ``constraints[i]``, where given, limits row i's tokens (constrain.ActionNameConstraint)."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    window = max((len(s) for s in stop_strings), default=0)
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, ids in enumerate(prompts):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[i, width - len(ids):] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # (B, T) left padding keeps positions from 0
    input_ids, attention, positions = input_ids.to(device), attention.to(device), positions.to(device)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
    cache, logits = out.cache, out.logits[:, -1, :]  # (B, V)
    next_position = positions[:, -1:] + 1  # (B, 1)
    generators = [torch.Generator().manual_seed(s) if cfg.temperature > 0 else None for s in seeds]
    new: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(cfg.max_new_tokens):
        step = []
        rows = logits.float().cpu()
        for i in range(len(prompts)):
            if done[i]:
                step.append(pad)
                continue
            row = rows[i]
            allowed = constraints[i].allowed(tokenizer.decode(new[i], skip_special_tokens=False)) \
                if constraints and constraints[i] is not None else None
            if allowed:
                row = torch.full_like(row, float("-inf"))
                row[allowed] = rows[i][allowed]
            token = pick_token(row, cfg, generators[i])
            new[i].append(token)
            step.append(token)
            if token in stop_ids or (window and _ends_with_stop(tokenizer, new[i][-window:], stop_strings)):
                done[i] = True
        if all(done):
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        out = model(input_ids=torch.tensor(step, device=device)[:, None], attention_mask=attention,
                    position_ids=next_position, cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1, :]
        next_position = next_position + 1
    return new


def _ends_with_stop(tokenizer: Any, tail: list[int], stop_strings: tuple[str, ...]) -> bool:
    text = tokenizer.decode(tail, skip_special_tokens=False)
    return any(s in text for s in stop_strings)


def cut_at_stop(text: str, stop_strings: tuple[str, ...]) -> str:
    """``text`` up to the first stop string."""
    cut = len(text)
    for s in stop_strings:
        at = text.find(s)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]
