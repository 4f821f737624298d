"""Getting a policy's weights: the tiny model (built and cached here) or a hub model.

Both end in ``from_pretrained``: the tiny model is saved in Hugging Face format, so the
train workers load every model the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from orchestrator.models.tokens import add_protocol_tokens
from orchestrator.task import Task

log = logging.getLogger(__name__)


def prepare_model(model_cfg: Any, task: Task, cache_dir: str) -> str:
    """Return what ``from_pretrained`` should load: a local folder or a hub name.

    Runs on the driver, before the workers start, so the warm start happens once.
    """
    if model_cfg.source == "tiny":
        from orchestrator.models.tiny import TinyRecipe, build_tiny_model

        return str(build_tiny_model(TinyRecipe(**dict(model_cfg.tiny)), task, cache_dir))
    if model_cfg.source == "hub":
        if not model_cfg.pretrained:
            raise ValueError(f"model.pretrained must name a hub model or a folder for model={model_cfg.name}")
        return str(model_cfg.pretrained)
    raise ValueError(f"model.source must be 'tiny' or 'hub', got {model_cfg.source!r}")


def load_causal_lm(name_or_path: str, dtype: str = "float32", tool_names: list[str] | None = None) -> tuple[Any, Any]:
    """Tokenizer and causal LM; protocol tokens are added (and embeddings resized) when missing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
    added = add_protocol_tokens(tokenizer, model)
    if added:
        log.info("added %d protocol tokens to %s and resized its embeddings", added, name_or_path)
    if Path(name_or_path).exists():
        log.info("loaded %s (%d parameters)", name_or_path, model.num_parameters())
    return tokenizer, model
