"""PPO for tool-using language models, readable top to bottom.

Time steps are the model's own tokens. Tool output and the prompt are context, not
actions: they get no reward, no KL, no advantage and no gradient, and GAE steps from one
model token to the next model token directly (TRL walked through tool tokens, so credit
faded by lambda per tool token). Names follow the paper and old TRL's PPOTrainer.

With ``ppo_epochs: 1`` and one minibatch per batch (``minibatch_size: null``) every update
starts from the policy that sampled the batch: the ratio is exactly 1, clipping never
engages, and the update is an advantage actor-critic step (policy gradient with a GAE
baseline and a KL penalty). Several epochs or minibatches make it the clipped PPO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import torch

from orchestrator.algos.base import AlgoSetup, Algorithm
from orchestrator.algos.batch import Batch, collate, entropy_of, logprobs_of, lm_forward, masked_mean, masked_whiten, \
    score_in_chunks
from orchestrator.algos.schedule import linear_anneal
from orchestrator.config.fields import value
from orchestrator.distributed import all_sum
from orchestrator.models.policy import PolicyWithValue, disable_dropout
from orchestrator.rollout.episode import Episode
from orchestrator.seeding import derived_seed


@dataclass
class PPOConfig:
    """``conf/algo/ppo.yaml`` (the values, each with a comment, are there)."""

    name: str = value()
    lr: float = value(gt=0)
    anneal_lr: bool = value()
    ppo_epochs: int = value(ge=1)
    # Episodes per gradient step over all workers; null: the whole batch.
    minibatch_size: Optional[int] = value(ge=1)
    init_kl_coef: float = value(ge=0)
    adaptive_kl: bool = value()
    target_kl: float = value(gt=0)
    kl_horizon: int = value(ge=1)
    gamma: float = value(ge=0, le=1)
    lam: float = value(ge=0, le=1)
    cliprange: float = value(gt=0)
    cliprange_value: float = value(gt=0)
    vf_coef: float = value(ge=0)
    max_grad_norm: float = value(ge=0)
    whiten_advantages: bool = value()
    # Weight of the mean token entropy in the loss, subtracted (> 0: a bonus; < 0: a penalty).
    entropy_coef: float = value(ge=-1, le=1)


# ---------------------------------------------------------------- KL controllers


class AdaptiveKLController:
    """beta <- beta * (1 + clip(KL/target - 1, -0.2, 0.2) * n/horizon) (Ziegler et al. 2019)."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_episodes: int) -> None:
        proportional_error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + proportional_error * n_episodes / self.horizon


class FixedKLController:
    def __init__(self, kl_coef: float) -> None:
        self.value = kl_coef

    def update(self, current_kl: float, n_episodes: int) -> None:
        pass


def make_kl_controller(cfg: PPOConfig) -> AdaptiveKLController | FixedKLController:
    if cfg.adaptive_kl:
        return AdaptiveKLController(cfg.init_kl_coef, cfg.target_kl, cfg.kl_horizon)
    return FixedKLController(cfg.init_kl_coef)


# ---------------------------------------------------------------- rewards and GAE over model tokens


def last_action_index(action_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last model token in action space (B,); -1 for rows without one."""
    t = action_mask.shape[1]
    idx = torch.arange(t, device=action_mask.device).expand_as(action_mask)
    return torch.where(action_mask > 0, idx, torch.full_like(idx, -1)).max(dim=1).values


def compute_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, action_mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token reward: -beta * KL on every model token, plus the score on the last one.

    Returns (rewards, kl), both (B, T-1) and zero off the model's tokens.
    """
    kl = (logprobs - ref_logprobs) * action_mask
    rewards = -kl_coef * kl
    last = last_action_index(action_mask)
    rows = (last >= 0).nonzero().squeeze(-1)
    rewards[rows, last[rows]] += scores[rows]
    return rewards, kl


def _compact_order(action_mask: torch.Tensor) -> torch.Tensor:
    """A permutation per row that puts model-token positions first, in their order."""
    return torch.argsort((action_mask <= 0).to(torch.int8), dim=1, stable=True)


def gae_over_actions(
    rewards: torch.Tensor, values: torch.Tensor, action_mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns where the next state of a model token is the next model token.

    Tool tokens between two model tokens are skipped: they are the environment's
    transition, not steps of the policy. Returns (advantages, returns), (B, T-1), zero off mask.
    """
    order = _compact_order(action_mask)
    valid = action_mask.gather(1, order)  # (B, T-1): 1s first
    r = rewards.gather(1, order) * valid
    v = values.gather(1, order) * valid
    n = int(valid.sum(1).max().item()) if valid.numel() else 0
    adv_c = torch.zeros_like(r)
    last_gae = torch.zeros(r.shape[0], device=r.device, dtype=r.dtype)
    zero = torch.zeros_like(last_gae)
    for k in reversed(range(n)):
        next_value = v[:, k + 1] if k + 1 < r.shape[1] else zero  # 0 past the last model token
        delta = r[:, k] + gamma * next_value - v[:, k]
        last_gae = (delta + gamma * lam * last_gae) * valid[:, k]
        adv_c[:, k] = last_gae
    advantages = torch.zeros_like(rewards).scatter(1, order, adv_c) * action_mask
    returns = (advantages + values) * action_mask
    return advantages, returns


# ---------------------------------------------------------------- losses


@dataclass
class LossOutput:
    loss: torch.Tensor
    pg_loss: torch.Tensor
    vf_loss: torch.Tensor
    clipfrac: torch.Tensor
    approxkl: torch.Tensor
    vf_clipfrac: torch.Tensor


def ppo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    action_mask: torch.Tensor,
    cfg: PPOConfig,
) -> LossOutput:
    """Clipped surrogate + clipped value loss, averaged over model tokens."""
    ratio = torch.exp(logprobs - old_logprobs)
    pg_losses = -advantages * ratio
    pg_losses_clipped = -advantages * torch.clamp(ratio, 1 - cfg.cliprange, 1 + cfg.cliprange)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses_clipped), action_mask)

    values_clipped = old_values + torch.clamp(values - old_values, -cfg.cliprange_value, cfg.cliprange_value)
    vf_losses = torch.max((values - returns) ** 2, (values_clipped - returns) ** 2)
    vf_loss = 0.5 * masked_mean(vf_losses, action_mask)

    with torch.no_grad():
        clipfrac = masked_mean((pg_losses_clipped > pg_losses).float(), action_mask)
        approxkl = 0.5 * masked_mean((logprobs - old_logprobs) ** 2, action_mask)
        vf_clipfrac = masked_mean(((values - returns) ** 2 < (values_clipped - returns) ** 2).float(), action_mask)
    return LossOutput(pg_loss + cfg.vf_coef * vf_loss, pg_loss, vf_loss, clipfrac, approxkl, vf_clipfrac)


# ---------------------------------------------------------------- the algorithm


@dataclass
class PPOExperience:
    batch: Batch
    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    kl: torch.Tensor


class PPO(Algorithm):
    """PPO with a value head on the policy's last hidden state and a frozen reference model."""

    Config = PPOConfig

    def __init__(self, cfg: PPOConfig, setup: AlgoSetup) -> None:
        super().__init__(cfg, setup)
        torch.manual_seed(derived_seed(setup.seed, "value_head"))  # the same on every rank, new per seed
        self.model = PolicyWithValue(setup.lm).to(setup.device)
        self.trained = setup.wrap(self.model)
        self.reference = disable_dropout(setup.reference()).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=cfg.lr, eps=1e-6)
        self.kl_ctl = make_kl_controller(cfg)
        self.generator = torch.Generator()  # minibatch order, reseeded every step (resumes draw the same)

    @property
    def policy(self) -> torch.nn.Module:
        return self.model.lm

    def prepare(self, episodes: list[Episode]) -> PPOExperience:
        batch = collate(episodes, self.setup.pad_id).to(self.setup.device)
        mask = batch.action_mask

        def score(chunk: Batch) -> dict[str, torch.Tensor]:
            with self.autocast():
                logits, values = self.model(chunk.input_ids, chunk.attention_mask, chunk.position_ids)
                ref_logits = lm_forward(self.reference, chunk)
            return {"old_logprobs": logprobs_of(logits, chunk.input_ids), "old_values": values[:, :-1],
                    "ref_logprobs": logprobs_of(ref_logits, chunk.input_ids)}

        self.model.eval()
        scored = score_in_chunks(batch, self.setup.minibatch_size, score)
        rewards, kl = compute_rewards(batch.scores, scored["old_logprobs"], scored["ref_logprobs"], mask,
                                      self.kl_ctl.value)
        advantages, returns = gae_over_actions(rewards, scored["old_values"], mask, self.cfg.gamma, self.cfg.lam)
        if self.cfg.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        return PPOExperience(batch, scored["old_logprobs"], scored["old_values"], advantages, returns, kl)

    def update(self, exp: PPOExperience, step: int) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = linear_anneal(cfg.lr, step, self.setup.max_steps) if cfg.anneal_lr else cfg.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.generator.manual_seed(derived_seed(self.setup.seed, "minibatch_order", self.setup.rank, step))
        self.trained.train()
        n, size = len(exp.batch), self.setup.minibatch_size
        stats: dict[str, list[float]] = {k: [] for k in ("policy", "value", "total", "clipfrac", "approxkl",
                                                         "vf_clipfrac", "entropy")}
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(n, generator=self.generator)
            for start in range(0, n, size):
                idx = perm[start : start + size].to(self.setup.device)
                mb = exp.batch.select(idx)
                w = mb.width()
                mb = mb.trim(w)
                cols = slice(0, w - 1)
                with self.autocast():
                    logits, values = self.trained(mb.input_ids, mb.attention_mask, mb.position_ids)
                out = ppo_loss(logprobs_of(logits, mb.input_ids), exp.old_logprobs[idx, cols], values[:, :-1].float(),
                               exp.old_values[idx, cols], exp.advantages[idx, cols], exp.returns[idx, cols],
                               mb.action_mask, cfg)
                entropy = masked_mean(entropy_of(logits), mb.action_mask)
                loss = out.loss - cfg.entropy_coef * entropy if cfg.entropy_coef else out.loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.trained.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                stats["entropy"].append(float(entropy.detach()))
                for key, v in (("policy", out.pg_loss), ("value", out.vf_loss), ("total", loss),
                               ("clipfrac", out.clipfrac), ("approxkl", out.approxkl), ("vf_clipfrac", out.vf_clipfrac)):
                    stats[key].append(float(v.detach()))

        # The controller adapts on the KL of the whole batch over all workers, so every rank
        # holds the same beta (each adapting on its own share would drift apart).
        kl_sum, episodes = all_sum([exp.kl.sum().item(), float(n)])
        mean_kl = kl_sum / max(episodes, 1.0)
        kl_coef = self.kl_ctl.value
        self.kl_ctl.update(mean_kl, int(episodes))
        avg = {k: sum(v) / max(len(v), 1) for k, v in stats.items()}
        mask = exp.batch.action_mask
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
            "ppo/returns/mean": masked_mean(exp.returns, mask).item(),
            "ppo/val/mean": masked_mean(exp.old_values, mask).item(),
            "time/update_s": time.perf_counter() - t0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "kl_coef": self.kl_ctl.value,
                "value_head": self.model.v_head.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_ctl.value = state["kl_coef"]
        self.model.v_head.load_state_dict(state["value_head"])
