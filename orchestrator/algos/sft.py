"""SFT: next-token cross-entropy on the model's own spans of demonstrations.

The loss is TRL's SFTTrainer loss with an assistant mask: prompt and tool tokens are context,
model tokens are targets, and the mean runs over every trained token of the step's batch on
all workers (the token count is summed across workers first, so 1 and 2 workers compute the
same number). Gradients of the step's minibatches accumulate into one optimizer step; the
learning rate follows Hugging Face's warm-up + cosine schedule, as a function of the step.

The same algorithm trains the tiny model's warm start and ``algo=sft`` runs (ToolBench).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Optional

import torch

from orchestrator.algos.base import AlgoSetup, Algorithm
from orchestrator.algos.batch import Batch, collate, lm_forward
from orchestrator.algos.schedule import warmup_cosine
from orchestrator.config.fields import value
from orchestrator.distributed import all_sum
from orchestrator.models.trained_logits import next_token_nll
from orchestrator.rollout.episode import Episode
from orchestrator.seeding import derived_seed


@dataclass
class SFTConfig:
    """``conf/algo/sft.yaml`` (the values, each with a comment, are there)."""

    name: str = value()
    lr: float = value(gt=0)
    warmup_steps: int = value(ge=0)
    lr_schedule: str = value(choices=("cosine", "linear", "constant"))
    weight_decay: float = value(ge=0)
    max_grad_norm: float = value(ge=0)
    # Demonstrations per gradient-accumulation chunk over all workers; null: the whole batch at once.
    minibatch_size: Optional[int] = value(ge=1)
    # Demonstrations the task generates (tasks that read theirs from files use them all); null: all.
    num_demos: Optional[int] = value(ge=1)
    # Warm-up as a share of the run (ToolLLaMA's 0.04); when set, it wins over warmup_steps.
    warmup_ratio: Optional[float] = value(ge=0, lt=1, default=None)
    # Passes over the demonstrations; when set, trainer.max_steps follows (derive()).
    epochs: Optional[float] = value(gt=0, default=None)


class SFT(Algorithm):
    """Supervised fine-tuning inside the same Ray Train workers as RL."""

    Config = SFTConfig
    learns_from = "demonstrations"

    def __init__(self, cfg: SFTConfig, setup: AlgoSetup) -> None:
        super().__init__(cfg, setup)
        self.lm = setup.lm
        self.trained = setup.wrap(self.lm)
        # Hugging Face Trainer's AdamW settings (betas 0.9/0.999, eps 1e-8).
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=cfg.lr, eps=1e-8,
                                           weight_decay=cfg.weight_decay)

    @property
    def policy(self) -> torch.nn.Module:
        return self.lm

    def prepare(self, episodes: list[Episode]) -> Batch:
        batch = collate(episodes, self.setup.pad_id).to(self.setup.device)
        if not bool((batch.action_mask.sum(1) > 0).all()):
            bad = [i for i, n in enumerate(batch.action_mask.sum(1).tolist()) if n == 0]
            raise ValueError(f"SFT: demonstration(s) {bad} of this batch have no trained token (no model span "
                             "survived tokenization and truncation)")
        return batch

    def token_nll(self, batch: Batch) -> torch.Tensor:
        """Summed negative log-likelihood of the trained tokens of ``batch`` (a scalar)."""
        return self._nll(self.trained, batch)

    def _nll(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        # Logits only where a token is trained (orchestrator/models/trained_logits.py): the
        # head and its softmax at every position were a third of a tiny model's step.
        def forward() -> torch.Tensor:
            with self.autocast():
                return lm_forward(model, batch)

        return next_token_nll(forward, self.lm, batch.input_ids, batch.action_mask)

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        warmup = round(cfg.warmup_ratio * self.setup.max_steps) if cfg.warmup_ratio is not None else cfg.warmup_steps
        lr = warmup_cosine(cfg.lr, step, self.setup.max_steps, warmup, cfg.lr_schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.trained.train()
        local_tokens = float(batch.action_mask.sum())
        (global_tokens,) = all_sum([local_tokens])
        # DDP averages gradients over workers; scaling by world size turns that mean into the
        # sum over workers, so the loss is the mean over every trained token of the step.
        scale = self.setup.world_size / max(global_tokens, 1.0)
        order = torch.randperm(len(batch), generator=torch.Generator().manual_seed(
            derived_seed(self.setup.seed, "sft_chunks", self.setup.rank, step)))
        self.optimizer.zero_grad(set_to_none=True)
        nll_sum = 0.0
        for start in range(0, len(batch), self.setup.minibatch_size):
            mb = batch.select(order[start : start + self.setup.minibatch_size].to(self.setup.device))
            mb = mb.trim(mb.width())
            nll = self.token_nll(mb)
            (nll * scale).backward()
            nll_sum += float(nll.detach())
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trained.parameters(),
                                                   cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
        self.optimizer.step()
        loss_sum, tokens = all_sum([nll_sum, local_tokens])
        return {"sft/loss": loss_sum / max(tokens, 1.0), "sft/learning_rate": lr, "sft/grad_norm": float(grad_norm),
                "sft/tokens": tokens, "time/update_s": time.perf_counter() - t0}

    @torch.no_grad()
    def evaluate(self, episodes: list[Episode]) -> dict[str, float]:
        """Held-out loss over all workers' demonstrations (mean over trained tokens)."""
        self.lm.eval()
        batch = self.prepare(episodes)
        nll, tokens = 0.0, 0.0
        for start in range(0, len(batch), self.setup.minibatch_size):
            mb = batch.select(torch.arange(start, min(start + self.setup.minibatch_size, len(batch)),
                                           device=self.setup.device))
            mb = mb.trim(mb.width())
            nll += float(self._nll(self.lm, mb))
            tokens += float(mb.action_mask.sum())
        nll, tokens = all_sum([nll, tokens])
        return {"eval/loss": nll / max(tokens, 1.0)}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
