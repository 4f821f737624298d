"""The PPO learner: one training step over a batch of episodes.

Runs inside every Ray Train worker. The policy may be wrapped in DDP: every worker
does the same number of minibatch steps over its own episodes, and DDP averages the
gradients, so all workers hold the same weights after each step.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from orchestrator.episode import Episode
from orchestrator.models.policy import disable_dropout
from orchestrator.ppo import (
    Batch,
    PPOConfig,
    collate,
    compute_rewards,
    entropy_of,
    gae_over_actions,
    logprobs_of,
    make_kl_controller,
    masked_mean,
    masked_whiten,
    ppo_loss,
)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class PPOLearner:
    def __init__(
        self,
        policy: nn.Module,
        ref_model: nn.Module,
        cfg: PPOConfig,
        pad_id: int,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> None:
        self.policy = policy  # PolicyWithValue, maybe DDP-wrapped
        self.ref_model = disable_dropout(ref_model).eval().requires_grad_(False)
        self.cfg = cfg
        self.pad_id = pad_id
        self.device = device
        self.optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, eps=1e-6)
        self.kl_ctl = make_kl_controller(cfg)
        self.generator = generator

    @torch.no_grad()
    def _score_batch(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Old logprobs and values (policy) and reference logprobs, without gradients.

        Scored in chunks of episodes of similar length, each cut to its own longest episode
        (right padding and causal attention: the same numbers as one full-width pass); past
        an episode's end the tensors hold zeros, which the action mask never reads.
        """
        n, width = batch.input_ids.shape
        old_logprobs = torch.zeros((n, width - 1), device=self.device)
        ref_logprobs = torch.zeros((n, width - 1), device=self.device)
        old_values = torch.zeros((n, width - 1), device=self.device)
        by_length = torch.argsort(batch.attention_mask.sum(1), descending=True)
        for start in range(0, n, self.cfg.minibatch_size):
            idx = by_length[start : start + self.cfg.minibatch_size]
            chunk = batch.select(idx)
            w = chunk.width()
            chunk = chunk.trim(w)
            logits, values = unwrap(self.policy)(chunk.input_ids, chunk.attention_mask, chunk.position_ids)
            old_logprobs[idx, : w - 1] = logprobs_of(logits, chunk.input_ids).float()
            old_values[idx, : w - 1] = values[:, :-1].float()
            ref_logits = self.ref_model(input_ids=chunk.input_ids, attention_mask=chunk.attention_mask,
                                        position_ids=chunk.position_ids, use_cache=False).logits
            ref_logprobs[idx, : w - 1] = logprobs_of(ref_logits, chunk.input_ids).float()
        return old_logprobs, old_values, ref_logprobs

    def step(self, episodes: list[Episode], progress: float = 0.0) -> dict[str, float]:
        """One PPO update. ``progress`` in [0, 1) is the share of the run already done: with
        ``anneal_lr`` the learning rate is ``lr * (1 - progress)``, a function of the step
        alone, so a resumed run continues the same schedule without saving it."""
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = cfg.lr * (1.0 - progress) if cfg.anneal_lr else cfg.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = collate(episodes, self.pad_id).to(self.device)
        mask = batch.action_mask
        old_logprobs, old_values, ref_logprobs = self._score_batch(batch)
        rewards, kl = compute_rewards(batch.scores, old_logprobs, ref_logprobs, mask, self.kl_ctl.value)
        advantages, returns = gae_over_actions(rewards, old_values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, mask)

        self.policy.train()
        n = len(episodes)
        stats: dict[str, list[float]] = {k: [] for k in ("policy", "value", "total", "clipfrac", "approxkl", "vf_clipfrac", "entropy")}
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(n, generator=self.generator)
            for start in range(0, n, cfg.minibatch_size):
                idx = perm[start : start + cfg.minibatch_size].to(self.device)
                mb = batch.select(idx)
                w = mb.width()
                mb = mb.trim(w)
                logits, values = self.policy(mb.input_ids, mb.attention_mask, mb.position_ids)
                logprobs = logprobs_of(logits, mb.input_ids)
                cols = slice(0, w - 1)
                out = ppo_loss(
                    logprobs, old_logprobs[idx, cols], values[:, :-1].float(), old_values[idx, cols],
                    advantages[idx, cols], returns[idx, cols], mb.action_mask, cfg,
                )
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats["entropy"].append(masked_mean(entropy_of(logits.detach()), mb.action_mask).item())
                for key, value in (("policy", out.pg_loss), ("value", out.vf_loss), ("total", out.loss),
                                   ("clipfrac", out.clipfrac), ("approxkl", out.approxkl), ("vf_clipfrac", out.vf_clipfrac)):
                    stats[key].append(float(value.detach()))

        mean_kl = kl.sum(1).mean().item()
        kl_coef = self.kl_ctl.value
        self.kl_ctl.update(mean_kl, n)
        avg = {k: sum(v) / max(len(v), 1) for k, v in stats.items()}
        return {
            "objective/kl": mean_kl,
            "objective/kl_coef": kl_coef,
            "ppo/learning_rate": lr,
            "objective/entropy": avg["entropy"],
            "ppo/loss/policy": avg["policy"],
            "ppo/loss/value": avg["value"],
            "ppo/loss/total": avg["total"],
            "ppo/policy/clipfrac": avg["clipfrac"],
            "ppo/policy/approxkl": avg["approxkl"],
            "ppo/val/clipfrac": avg["vf_clipfrac"],
            "ppo/returns/mean": masked_mean(returns, mask).item(),
            "ppo/val/mean": masked_mean(old_values, mask).item(),
            "time/update_s": time.perf_counter() - t0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "kl_coef": self.kl_ctl.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_ctl.value = state["kl_coef"]
