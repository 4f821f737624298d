"""Logits only at the positions a loss reads.

A causal LM's output head turns every position into V logits, and the log-softmax over them
is as large again; SFT and copy pretraining read only the positions whose next token is
trained (a fifth of a synthetic ToolBench trajectory, a sixth of a copying row). At the tiny
model's sizes the head is a third of a step, so computing it where nothing reads it costs a
third of the run. A forward pre-hook on the model's output embeddings hands the head just the
kept hidden states: any Hugging Face causal LM, bare or wrapped by DDP, FSDP or LoRA, then
returns (N, V) logits for its N kept positions, the same numbers as the full (B, T, V) ones
there, with the model's own forward (and so its wrappers' gradient hooks) left as it is.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F


@contextmanager
def logits_only_at(model: Any, keep: torch.Tensor) -> Iterator[None]:
    """Within the block, forward passes of ``model`` return logits for the positions where the
    boolean ``keep`` (B, T) is true, in row-major order, as one (N, V) tensor."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings to compute selected logits with")

    def select(module: torch.nn.Module, args: tuple) -> tuple:
        hidden = args[0]
        if tuple(hidden.shape[:2]) != tuple(keep.shape):
            raise RuntimeError(f"logits_only_at: the head got hidden states of shape {tuple(hidden.shape)}, "
                               f"the kept positions are {tuple(keep.shape)}")
        return (hidden[keep],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def next_token_nll(forward: Any, model: Any, input_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Summed weighted negative log-likelihood of the next tokens: ``weights`` (B, T-1) weighs
    token t+1 predicted from position t, as an action mask does; only the positions with a
    non-zero weight reach the head. ``forward()`` runs the model (``model`` is the unwrapped
    one whose head is hooked, ``forward`` may go through a DDP or FSDP wrapper)."""
    trained = weights != 0
    with logits_only_at(model, F.pad(trained, (0, 1))):
        logits = forward()
    nll = F.cross_entropy(logits.float(), input_ids[:, 1:][trained], reduction="none")
    return (nll * weights[trained]).sum()
