"""GRPO: group-relative advantages, no value head (DeepSeekMath; TRL's GRPOTrainer; Dr. GRPO).

Each prompt is rolled out ``group_size`` times; an episode's advantage is its reward minus
its group's mean, divided by the group's std (``scale_rewards: group``) or not
(``scale_rewards: none``, Dr. GRPO: the std division favours groups that are almost all
right or all wrong). Every model token of an episode carries its advantage; tool output and
the prompt carry none, exactly as in PPO. The loss per token is the clipped surrogate plus,
with ``beta > 0``, ``beta`` times the k3 estimate of KL to the reference policy (a loss term,
not a reward penalty). ``loss_type`` says how tokens are averaged:

- ``token``: over every model token of the minibatch (long episodes weigh by their length);
- ``sequence``: per episode first, then over episodes (the GRPO paper; favours short answers);
- ``dr_grpo``: the sum over tokens divided by episodes x ``max_length`` (a constant: no
  length bias either way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import torch

from orchestrator.algos.base import AlgoSetup, Algorithm
from orchestrator.algos.batch import Batch, collate, entropy_of, lm_forward, logprobs_of, masked_mean, score_in_chunks
from orchestrator.algos.schedule import linear_anneal
from orchestrator.config.fields import value
from orchestrator.distributed import all_sum
from orchestrator.models.policy import disable_dropout
from orchestrator.rollout.episode import Episode
from orchestrator.seeding import derived_seed


@dataclass
class GRPOConfig:
    """``conf/algo/grpo.yaml`` (the values, each with a comment, are there)."""

    name: str = value()
    lr: float = value(gt=0)
    anneal_lr: bool = value()
    group_size: int = value(ge=2)
    update_epochs: int = value(ge=1)
    # Episodes per gradient step over all workers; null: the whole batch.
    minibatch_size: Optional[int] = value(ge=1)
    beta: float = value(ge=0)
    cliprange: float = value(gt=0)
    loss_type: str = value(choices=("token", "sequence", "dr_grpo"))
    scale_rewards: str = value(choices=("group", "none"))
    max_grad_norm: float = value(ge=0)
    # Weight of the mean token entropy in the loss, subtracted (> 0: a bonus; < 0: a penalty).
    entropy_coef: float = value(ge=-1, le=1)


def group_advantages(scores: torch.Tensor, group_size: int, scale: str, eps: float = 1e-4) -> torch.Tensor:
    """(B,) rewards of consecutive groups -> (B,) advantages: reward - group mean (/ group std)."""
    grouped = scores.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    return centred.reshape(-1)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate exp(r) - r - 1 with r = ref - logp (>= 0, unbiased)."""
    r = ref_logprobs - logprobs
    return torch.exp(r) - r - 1.0


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str, max_length: int) -> torch.Tensor:
    """Average a (b, t) per-token loss over model tokens as ``loss_type`` says (module docstring)."""
    if loss_type == "token":
        return masked_mean(per_token, mask)
    if loss_type == "sequence":
        per_episode = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_episode.mean()
    return (per_token * mask).sum() / (mask.shape[0] * max_length)


@dataclass
class GRPOExperience:
    batch: Batch
    old_logprobs: torch.Tensor
    ref_logprobs: torch.Tensor | None
    advantages: torch.Tensor  # (B, T-1): each episode's advantage on its model tokens
    zero_groups: float  # share of groups whose rewards were all equal (no signal)


class GRPO(Algorithm):
    """Group-relative policy optimisation over the model's own tokens."""

    Config = GRPOConfig

    def __init__(self, cfg: GRPOConfig, setup: AlgoSetup) -> None:
        super().__init__(cfg, setup)
        self.lm = disable_dropout(setup.lm)
        self.trained = setup.wrap(self.lm)
        self.reference = setup.reference().eval().requires_grad_(False) if cfg.beta > 0 else None
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=cfg.lr, eps=1e-6)
        self.generator = torch.Generator()

    @staticmethod
    def episodes_per_prompt(cfg: Any) -> int:
        return cfg.group_size

    @property
    def policy(self) -> torch.nn.Module:
        return self.lm

    def prepare(self, episodes: list[Episode]) -> GRPOExperience:
        g = self.cfg.group_size
        if len(episodes) % g:
            raise ValueError(f"GRPO got {len(episodes)} episodes, not whole groups of algo.group_size={g}")
        batch = collate(episodes, self.setup.pad_id).to(self.setup.device)

        def score(chunk: Batch) -> dict[str, torch.Tensor]:
            with self.autocast():
                out = {"old_logprobs": logprobs_of(lm_forward(self.lm, chunk), chunk.input_ids)}
                if self.reference is not None:
                    out["ref_logprobs"] = logprobs_of(lm_forward(self.reference, chunk), chunk.input_ids)
            return out

        self.lm.eval()
        scored = score_in_chunks(batch, self.setup.minibatch_size, score)
        advantage = group_advantages(batch.scores, g, self.cfg.scale_rewards)
        zero = float((batch.scores.view(-1, g).std(dim=1) == 0).float().mean())
        return GRPOExperience(batch, scored["old_logprobs"], scored.get("ref_logprobs"),
                              advantage[:, None] * batch.action_mask, zero)

    def update(self, exp: GRPOExperience, step: int) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = linear_anneal(cfg.lr, step, self.setup.max_steps) if cfg.anneal_lr else cfg.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.generator.manual_seed(derived_seed(self.setup.seed, "minibatch_order", self.setup.rank, step))
        self.trained.train()
        n, size = len(exp.batch), self.setup.minibatch_size
        stats: dict[str, list[float]] = {k: [] for k in ("policy", "kl", "total", "clipfrac", "entropy")}
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=self.generator)
            for start in range(0, n, size):
                idx = perm[start : start + size].to(self.setup.device)
                mb = exp.batch.select(idx)
                w = mb.width()
                mb = mb.trim(w)
                cols = slice(0, w - 1)
                mask = mb.action_mask
                with self.autocast():
                    logits = lm_forward(self.trained, mb)
                logprobs = logprobs_of(logits, mb.input_ids)
                adv = exp.advantages[idx, cols]
                ratio = torch.exp(logprobs - exp.old_logprobs[idx, cols])
                surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - cfg.cliprange, 1 + cfg.cliprange) * adv)
                per_token = -surrogate
                kl = k3_kl(logprobs, exp.ref_logprobs[idx, cols]) if exp.ref_logprobs is not None else None
                if kl is not None:
                    per_token = per_token + cfg.beta * kl
                loss = aggregate(per_token, mask, cfg.loss_type, self.setup.max_length)
                entropy = masked_mean(entropy_of(logits), mask)
                if cfg.entropy_coef:
                    loss = loss - cfg.entropy_coef * entropy
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.trained.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    clipped = ((ratio - 1).abs() > cfg.cliprange).float()
                    stats["clipfrac"].append(masked_mean(clipped, mask).item())
                    stats["entropy"].append(float(entropy.detach()))
                    stats["policy"].append(float(aggregate(-surrogate, mask, cfg.loss_type, self.setup.max_length)))
                    stats["kl"].append(masked_mean(kl, mask).item() if kl is not None else 0.0)
                    stats["total"].append(float(loss.detach()))
        avg = {k: sum(v) / max(len(v), 1) for k, v in stats.items()}
        metrics = {
            "ppo/learning_rate": lr,
            "objective/entropy": avg["entropy"],
            "grpo/loss/policy": avg["policy"],
            "grpo/loss/total": avg["total"],
            "grpo/policy/clipfrac": avg["clipfrac"],
            "grpo/zero_advantage_groups": exp.zero_groups,
            "time/update_s": time.perf_counter() - t0,
        }
        if exp.ref_logprobs is not None:
            # Summed KL per episode against the reference, as PPO reports it (comparable curves).
            kl_sum, episodes = all_sum([((exp.old_logprobs - exp.ref_logprobs) * exp.batch.action_mask).sum().item(),
                                        float(n)])
            metrics["objective/kl"] = kl_sum / max(episodes, 1.0)
            metrics["grpo/kl_k3"] = avg["kl"]
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
