"""A local Hugging Face model as the policy: our SFT checkpoints, offline.

Every call's context is rendered by the same template as the SFT data (``render.py``), the
prompts of all open nodes are generated in one batch, and each row draws from its own
generator seeded by (run seed, query, call index), so a query's text is the same whatever
shares its batch. ``path`` is a local folder in Hugging Face format (a run's checkpoint
folder works too: its ``model/`` subfolder is used); nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.constrain import ActionNameConstraint, function_names
from tasks.toolbench.conversation import Step
from tasks.toolbench.inference.policy import call_seed, to_conversation
from tasks.toolbench.inference.sampling import SamplingConfig, cut_at_stop, generate_rows
from tasks.toolbench.inference.search import LLMCall, LLMReply
from tasks.toolbench.render import ParseError, make_template

log = logging.getLogger(__name__)


@dataclass
class HFPolicyConfig:
    # Local model folder (config.json + weights + tokenizer), or a checkpoint folder with model/.
    path: str
    # Renderer template: "toolllama" (ToolBench's text) or "chat" (the tokenizer's chat template).
    template: str = "toolllama"
    max_new_tokens: int = 512
    # 0: greedy. ToolLLaMA's own inference samples at 0.5.
    temperature: float = 0.0
    top_p: float = 1.0
    # Run seed for sampling (each call's generator is derived from it, the query and the call).
    seed: int = 0
    # Extra stop strings besides the template's end marker.
    stop: list[str] = field(default_factory=list)
    # "auto": cuda when available, else cpu.
    device: str = "auto"
    # "auto": bfloat16 on cuda, float32 on cpu.
    dtype: str = "auto"
    # The Action line can only name an offered function (constrain.py); toolllama template only.
    constrain_actions: bool = False


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself when it holds config.json, else its ``model/`` subfolder (a checkpoint)."""
    path = Path(path).expanduser()
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    raise FileNotFoundError(f"{path}: no Hugging Face model here (config.json, or model/config.json in a checkpoint)")


class HFPolicy:
    def __init__(self, **cfg: Any) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = HFPolicyConfig(**cfg)
        path = resolve_model_path(self.cfg.path)
        device = self.cfg.device if self.cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}[self.cfg.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.template = make_template(self.cfg.template, tokenizer=self.tokenizer)
        self.stop = tuple(s for s in (self.template.stop, *self.cfg.stop) if s)
        if self.cfg.constrain_actions and self.cfg.template != "toolllama":
            raise ValueError(f"policy.constrain_actions works with template=toolllama, not {self.cfg.template!r}")
        self.sampling = SamplingConfig(self.cfg.max_new_tokens, self.cfg.temperature, self.cfg.top_p)
        config = self.model.config
        self.context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 4096
        if self.cfg.max_new_tokens >= self.context:
            raise ValueError(f"policy.max_new_tokens={self.cfg.max_new_tokens} leaves no room for a prompt in the "
                             f"model's {self.context} positions")
        log.info("policy: %s on %s (%s), template %s, context %d", path, device, dtype, self.cfg.template, self.context)

    def parse(self, text: str) -> Step | ParseError:
        return self.template.parse(text)

    def generate(self, calls: list[LLMCall]) -> list[LLMReply]:
        if not calls:
            return []
        room = self.context - self.cfg.max_new_tokens
        prompts = []
        for call in calls:
            ids = self.tokenizer(self.template.prompt(to_conversation(call)), add_special_tokens=False)["input_ids"]
            prompts.append(ids[-room:])  # ToolBench keeps the end of an over-long prompt
        seeds = [call_seed(self.cfg.seed, c) for c in calls]
        constraints = [ActionNameConstraint(self.tokenizer, function_names(c.functions)) if self.cfg.constrain_actions
                       and function_names(c.functions) else None for c in calls]
        rows = generate_rows(self.model, self.tokenizer, prompts, seeds, self.sampling, self.stop, constraints)
        cut = (*self.stop, self.tokenizer.eos_token) if self.tokenizer.eos_token else self.stop
        return [LLMReply(text=cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=False), cut),
                         prompt_tokens=len(ids), completion_tokens=len(new))
                for ids, new in zip(prompts, rows)]
