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


def load_causal_lm(name_or_path: str, rope_scaling: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Tokenizer and float32 causal LM; protocol tokens are added (and embeddings resized) when missing.

    ``rope_scaling`` (e.g. ``{"rope_type": "linear", "factor": 2.0}``) goes into the model's config:
    a 4k-context model reads 8k-token ToolBench trajectories, as ToolLLaMA does."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path)
    if rope_scaling:
        if isinstance(getattr(config, "rope_parameters", None), dict):  # transformers 5: one dict with rope_theta
            config.rope_parameters = {**config.rope_parameters, **dict(rope_scaling)}
        else:
            config.rope_scaling = dict(rope_scaling)
        factor = float(rope_scaling.get("factor", 1.0))
        if getattr(config, "max_position_embeddings", None):
            config.max_position_embeddings = int(config.max_position_embeddings * factor)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, config=config, dtype=torch.float32)
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


def prepare_for_training(lm: Any, model_cfg: Any) -> Any:
    """Gradient checkpointing and LoRA adapters as ``model_cfg`` asks; returns the module to train."""
    if getattr(model_cfg, "gradient_checkpointing", False):
        lm.gradient_checkpointing_enable()
        lm.config.use_cache = False
    lora = getattr(model_cfg, "lora", None)
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        lm = get_peft_model(lm, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                           target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
        trainable = sum(p.numel() for p in lm.parameters() if p.requires_grad)
        log.info("LoRA: %d trainable parameters of %d", trainable, sum(p.numel() for p in lm.parameters()))
    return lm


def exportable(lm: Any) -> Any:
    """The model to save in Hugging Face format: LoRA adapters merged into a copy of the weights
    (loadable with from_pretrained, no peft needed)."""
    if hasattr(lm, "merge_and_unload"):
        import copy

        return copy.deepcopy(lm).merge_and_unload()
    return lm


def load_weights(lm: Any, saved: Any) -> None:
    """A checkpoint's (merged) weights into ``lm``; with LoRA, into its base model (fresh adapters on top:
    the merged weights already hold what the old adapters learned)."""
    target = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    weights = saved.state_dict()
    own = target.state_dict()
    # peft moves an adapted layer's weight to <layer>.base_layer.weight
    renamed = {(k.replace(".weight", ".base_layer.weight") if k.replace(".weight", ".base_layer.weight") in own
                and k not in own else k.replace(".bias", ".base_layer.bias") if k.replace(".bias", ".base_layer.bias")
                in own and k not in own else k): v for k, v in weights.items()}
    missing, unexpected = target.load_state_dict(renamed, strict=False)
    real_missing = [k for k in missing if "lora_" not in k]
    if real_missing or unexpected:
        raise ValueError(f"checkpoint does not fit the model: missing {real_missing[:5]}, unexpected {unexpected[:5]}")
