"""The PPO policy: a causal LM plus a scalar value head on its last hidden state."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


DROPOUT_CONFIG_KEYS = ("attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_dropout",
                       "dropout", "attention_probs_dropout_prob", "hidden_dropout_prob", "summary_first_dropout")


def disable_dropout(model: nn.Module) -> nn.Module:
    """No dropout anywhere in ``model``. PPO's ratio compares the update's log-probs with those
    scored at rollout time: dropout in one and not the other turns the ratio into noise that
    the clip then throws away. ``nn.Dropout`` modules get p=0, and so does every dropout
    probability in the config, which some families read as a float in their attention
    (GPTBigCode's ``attn_pdrop``, Llama's ``attention_dropout``) without a module."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for attr, value in list(vars(module).items()):  # attn_pdrop, attn_dropout, attention_dropout, ...
            if "drop" in attr and isinstance(value, float):
                setattr(module, attr, 0.0)
    config = getattr(model, "config", None)
    for key in DROPOUT_CONFIG_KEYS:
        if config is not None and isinstance(getattr(config, key, None), float):
            setattr(config, key, 0.0)
    return model


class PolicyWithValue(nn.Module):
    """``forward`` returns (logits (B,T,V), values (B,T)). The value head is new: its
    initialisation is seeded by the run's seed, like everything else that is random."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = disable_dropout(lm)
        hidden = lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.n_embd
        self.v_head = nn.Linear(hidden, 1)
        # Near zero, so the first advantages are the rewards' and not a random head's noise (a
        # head at the usual 1/sqrt(hidden) scale gave values of +-1 per token on 0/1 rewards and
        # the tiny model's first PPO steps undid its copying); still drawn from the run's seed.
        nn.init.normal_(self.v_head.weight, std=1e-3)
        nn.init.zeros_(self.v_head.bias)

    @property
    def config(self) -> Any:
        return self.lm.config

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, **_: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=True,
            use_cache=False,
        )
        values = self.v_head(out.hidden_states[-1].float()).squeeze(-1)  # (B, T)
        return out.logits, values
