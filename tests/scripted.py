"""A scripted causal LM: writes planned text per prompt, token by token, through the KV-cache
interface the sampler uses. Lets environment tests say exactly what the "model" does."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class _Cache:
    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = rows

    def batch_select_indices(self, idx: torch.Tensor) -> None:
        self.rows = [self.rows[i] for i in idx.tolist()]


class ScriptedLM(nn.Module):
    """``plans[prompt] = [turn1_text, turn2_text, ...]``; each turn's text is written after the
    prompt or after the last ``<response>``. Past the plan it writes ``<eos>``."""

    def __init__(self, tokenizer, plans: dict[str, list[str]]) -> None:
        super().__init__()
        self.tok = tokenizer
        self.plans = plans
        self.dummy = nn.Parameter(torch.zeros(1))
        self.vocab = len(tokenizer)

    def _next(self, seq: list[int]) -> int:
        text = self.tok.decode(seq, skip_special_tokens=False)
        prompt = next(p for p in self.plans if text.startswith(p))
        done_turns = text[len(prompt):].count("<response>")
        plan = self.plans[prompt]
        if done_turns >= len(plan):
            return self.tok.eos_token_id
        last = max(text.rfind("<response>") + len("<response>"), len(prompt)) if done_turns else len(prompt)
        so_far = self.tok(text[last:], add_special_tokens=False)["input_ids"]
        target = self.tok(plan[done_turns], add_special_tokens=False)["input_ids"]
        return target[len(so_far)] if len(so_far) < len(target) else self.tok.eos_token_id

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=True, **_):
        if past_key_values is None:
            rows = [[t for t, m in zip(r, a) if m] for r, a in zip(input_ids.tolist(), attention_mask.tolist())]
            cache = _Cache(rows)
        else:
            cache = past_key_values
            for row, t in zip(cache.rows, input_ids[:, -1].tolist()):
                row.append(t)
        logits = torch.full((len(cache.rows), input_ids.shape[1], self.vocab), -1e4)
        for i, row in enumerate(cache.rows):
            logits[i, -1, self._next(row)] = 1e4
        return SimpleNamespace(logits=logits, past_key_values=cache)
