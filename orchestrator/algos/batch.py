"""Episodes as tensors, and the per-token quantities every algorithm reads from them.

Shapes: B episodes, T tokens; "action" tensors are (B, T-1): entry t is the token at t+1
predicted from position t. ``action_mask`` is 1 where that token is the model's own (a
model span of the episode): prompt and tool tokens are context, never targets, in every
algorithm alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from orchestrator.rollout.episode import Episode


@dataclass
class Batch:
    """Right-padded episodes."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    action_mask: torch.Tensor  # (B, T-1) float
    scores: torch.Tensor  # (B,)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, idx: torch.Tensor) -> "Batch":
        return Batch(self.input_ids[idx], self.attention_mask[idx], self.position_ids[idx], self.action_mask[idx],
                     self.scores[idx])

    def width(self) -> int:
        """Columns that hold a real token in some row (the rest is right padding)."""
        return int(self.attention_mask.sum(1).max().item())

    def trim(self, width: int) -> "Batch":
        """The first ``width`` columns: a minibatch of short episodes need not pay for the
        longest episode of the whole batch."""
        return Batch(self.input_ids[:, :width], self.attention_mask[:, :width], self.position_ids[:, :width],
                     self.action_mask[:, : width - 1], self.scores)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                              self.action_mask, self.scores)))


def collate(episodes: list[Episode], pad_id: int) -> Batch:
    """Right-pad ids and masks. Positions count from 0 at the first token, as in rollout."""
    width = max(len(ep) for ep in episodes)
    b = len(episodes)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    attention = torch.zeros((b, width), dtype=torch.long)
    model_mask = torch.zeros((b, width), dtype=torch.float)
    for i, ep in enumerate(episodes):
        n = len(ep)
        input_ids[i, :n] = torch.tensor(ep.ids, dtype=torch.long)
        attention[i, :n] = 1
        model_mask[i, :n] = torch.tensor(ep.mask, dtype=torch.float)
    positions = torch.arange(width).expand(b, width).clone()
    scores = torch.tensor([ep.reward for ep in episodes], dtype=torch.float)
    return Batch(input_ids, attention, positions, model_mask[:, 1:], scores)


def logprobs_of(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(token t+1 | <= t) for every t: (B, T, V), (B, T) -> (B, T-1)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution: (B, T, V) -> (B, T-1)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return ((x - mean) * torch.rsqrt(var + eps)) * mask


def lm_forward(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Logits of a plain causal LM over ``batch`` (B, T, V)."""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                 use_cache=False).logits


@torch.no_grad()
def score_in_chunks(batch: Batch, chunk_size: int, score: "ChunkScorer") -> dict[str, torch.Tensor]:
    """Per-token tensors (B, T-1) scored without gradients in chunks of episodes of similar
    length, each cut to its own longest episode (right padding and causal attention: the
    same numbers as one full-width pass). Past an episode's end the tensors hold zeros,
    which the action mask never reads. ``score(chunk)`` returns name -> (b, w-1) tensors."""
    n, width = batch.input_ids.shape
    out: dict[str, torch.Tensor] = {}
    by_length = torch.argsort(batch.attention_mask.sum(1), descending=True)
    for start in range(0, n, max(chunk_size, 1)):
        idx = by_length[start : start + chunk_size]
        chunk = batch.select(idx)
        w = chunk.width()
        for name, values in score(chunk.trim(w)).items():
            if name not in out:
                out[name] = torch.zeros((n, width - 1), device=batch.input_ids.device)
            out[name][idx, : w - 1] = values.float()
    return out


ChunkScorer = "Callable[[Batch], dict[str, torch.Tensor]]"
