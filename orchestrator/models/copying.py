"""Copy pretraining: teach a model built from scratch to copy a string it has read before.

A pretrained language model writes out an unseen name from its prompt without effort: it has
induction heads (Olsson et al., 2022), attention that finds the earlier occurrence of the token
just written and copies the one after it. The tiny model is built from scratch and has none, and
supervised tool calls alone do not grow one within a CPU budget: on ToolBench's held-out tools
it wrote no call step right (docs/toolbench.md), and an induction head forms only after a long
plateau of the loss. This is the piece of pretraining that the tiny model lacks, done directly:
rows of random ordinary tokens in which a string of 4 to ``max_length`` tokens comes back at a
random distance, with the loss on the repeat (its first token excepted: nothing predicts it).

The distance must vary. With ``x x`` alone the repeat always starts ``len(x)`` tokens back, and
a model learns that fixed offset (a positional head) within a hundred steps; that copies nothing
in a prompt. Random distances leave content matching as the only way down, which takes a few
hundred steps of plateau at ln(vocabulary) before the loss falls (measured: docs/toolbench.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from orchestrator.models.trained_logits import next_token_nll


@dataclass(frozen=True)
class CopySpec:
    """The copying data and its optimisation (part of the tiny model's recipe)."""

    steps: int
    lr: float = 1e-3
    # Longest repeated string, in tokens (the shortest is 4); a row is four times as long.
    max_length: int = 12
    # Tokens per step (rows of 4 * max_length).
    batch_tokens: int = 4096
    warmup_steps: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("steps must be at least 0")
        if self.max_length < 4:
            raise ValueError("max_length must be at least 4")
        if self.batch_tokens < 4 * self.max_length:
            raise ValueError("batch_tokens must hold at least one row (4 * max_length)")


def ordinary_ids(tokenizer) -> torch.Tensor:
    """Ids of every token that is not special (no end, pad or marker inside the copies)."""
    special = set(tokenizer.all_special_ids)
    return torch.tensor([i for i in range(len(tokenizer)) if i not in special])


def copy_batches(vocabulary: torch.Tensor, spec: CopySpec) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(ids, mask)`` batches: random rows from ``vocabulary`` with one string repeated
    in each; ``mask`` marks the repeat's tokens that a copy predicts."""
    generator = torch.Generator().manual_seed(spec.seed)
    width = 4 * spec.max_length
    rows = spec.batch_tokens // width
    while True:
        ids = vocabulary[torch.randint(len(vocabulary), (rows, width), generator=generator)]
        mask = torch.zeros((rows, width), dtype=torch.bool)
        for row in range(rows):
            length = int(torch.randint(4, spec.max_length + 1, (), generator=generator))
            gap = int(torch.randint(0, width - 2 * length + 1, (), generator=generator))
            start = int(torch.randint(0, width - 2 * length - gap + 1, (), generator=generator))
            again = start + length + gap
            ids[row, again: again + length] = ids[row, start: start + length]
            mask[row, again + 1: again + length] = True
        yield ids, mask


def copy_loss(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the model on the masked tokens (each predicted from the ones before)."""
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    target = mask[:, 1:].float()
    nll = next_token_nll(lambda: model(input_ids=ids).logits, model, ids, target)
    return nll / target.sum().clamp(min=1)


def pretrain_copying(model, tokenizer, spec: CopySpec,
                     on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` in place on the copying data for ``spec.steps`` steps (AdamW, linear
    warm-up, constant rate); returns the loss of each step."""
    torch.manual_seed(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0, betas=(0.9, 0.95))
    batches = copy_batches(ordinary_ids(tokenizer), spec)
    model.train()
    losses = []
    for step in range(spec.steps):
        for group in optimizer.param_groups:
            group["lr"] = spec.lr * min(1.0, (step + 1) / max(1, spec.warmup_steps))
        loss = copy_loss(model, *next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, losses[-1])
    model.eval()
    return losses
