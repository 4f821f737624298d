"""Loading a policy for training: tokenizer and causal LM, the protocol's tokens added.

Every model loads the same way, with ``from_pretrained``: the tiny model is saved in Hugging
Face format too. Weights load in float32 whatever ``model.dtype`` says: they are the
optimizer's master copy (an AdamW update of ~1e-5 is below half a bf16 step for most weights
and would round away); ``model.dtype`` is the dtype forward passes run in (autocast).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from orchestrator.models.tokens import add_protocol_tokens

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_causal_lm(name_or_path: str) -> tuple[Any, Any]:
    """Tokenizer and float32 causal LM; protocol tokens are added (and embeddings resized) when missing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
    added = add_protocol_tokens(tokenizer, model)
    if added:
        log.info("added %d protocol tokens to %s and resized its embeddings", added, name_or_path)
    if Path(name_or_path).exists():
        log.info("loaded %s (%d parameters)", name_or_path, model.num_parameters())
    return tokenizer, model


def compute_dtype(name: str) -> torch.dtype | None:
    """The autocast dtype of ``model.dtype`` (None for float32: no autocast)."""
    dtype = DTYPES[name]
    return None if dtype == torch.float32 else dtype
