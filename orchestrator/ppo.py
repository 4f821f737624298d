"""PPO for tool-using language models: the maths, readable top to bottom.

Time steps are the model's own tokens. Tool output and the prompt are context, not
actions: they get no reward, no KL, no advantage and no gradient, and GAE steps from one
model token to the next model token directly (TRL walked through tool tokens, so credit
faded by lambda per tool token). Names follow the paper and old TRL's PPOTrainer.

Shapes: B episodes, T tokens; "action" tensors are (B, T-1): entry t is the token at t+1
predicted from position t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from orchestrator.episode import Episode


@dataclass
class PPOConfig:
    """``conf/algo/ppo.yaml``; defaults are old TRL PPOTrainer's (a fair baseline)."""

    # Learning rate of AdamW.
    lr: float = 1.41e-5
    # Passes over each batch.
    ppo_epochs: int = 4
    # Episodes per gradient step (per worker).
    minibatch_size: int = 16
    # Initial KL penalty coefficient beta.
    init_kl_coef: float = 0.2
    # Adapt beta towards target_kl (TRL's proportional controller) or keep it fixed.
    adaptive_kl: bool = True
    # Target of the summed per-episode KL, in nats.
    target_kl: float = 6.0
    # Horizon of the adaptive controller, in episodes.
    kl_horizon: int = 10000
    # Discount and GAE lambda over model tokens.
    gamma: float = 1.0
    lam: float = 0.95
    # Policy ratio clip and value clip.
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    # Weight of the value loss.
    vf_coef: float = 0.1
    # Gradient norm clip (0: off).
    max_grad_norm: float = 1.0
    # Anneal the learning rate linearly to 0 over the run (as CleanRL's PPO does).
    anneal_lr: bool = False
    # Normalise advantages to zero mean, unit variance over the batch's model tokens.
    whiten_advantages: bool = True

    def __post_init__(self) -> None:
        checks = {
            "lr": self.lr > 0,
            "ppo_epochs": self.ppo_epochs >= 1,
            "minibatch_size": self.minibatch_size >= 1,
            "init_kl_coef": self.init_kl_coef >= 0,
            "gamma": 0 <= self.gamma <= 1,
            "lam": 0 <= self.lam <= 1,
            "cliprange": self.cliprange > 0,
            "target_kl": self.target_kl > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"algo: invalid value for {', '.join('algo.' + b for b in bad)}")


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


# ---------------------------------------------------------------- batching


@dataclass
class Batch:
    """Episodes as right-padded tensors. ``action_mask`` is 1 where a model token is predicted."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    action_mask: torch.Tensor  # (B, T-1) float
    scores: torch.Tensor  # (B,)

    def select(self, idx: torch.Tensor) -> "Batch":
        return Batch(self.input_ids[idx], self.attention_mask[idx], self.position_ids[idx], self.action_mask[idx], self.scores[idx])

    def width(self) -> int:
        """Columns that hold a real token in some row (the rest is right padding)."""
        return int(self.attention_mask.sum(1).max().item())

    def trim(self, width: int) -> "Batch":
        """The first ``width`` columns: a minibatch of short episodes need not pay for the
        longest episode of the whole batch."""
        return Batch(self.input_ids[:, :width], self.attention_mask[:, :width], self.position_ids[:, :width],
                     self.action_mask[:, : width - 1], self.scores)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids, self.action_mask, self.scores)))


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


# ---------------------------------------------------------------- per-token quantities


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


# ---------------------------------------------------------------- GAE over model tokens only


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
