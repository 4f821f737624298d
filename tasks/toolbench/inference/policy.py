"""Policies: what writes a search's next step. Three kinds share one interface
(``generate(calls) -> replies``, see :class:`tasks.toolbench.inference.driver.Policy`):

* :class:`ScriptedPolicy` (here): replies fixed in advance, for golden tests;
* :class:`tasks.toolbench.inference.hf_policy.HFPolicy`: a local Hugging Face model (our SFT
  checkpoints), batched generation across the open nodes of many queries;
* :class:`tasks.toolbench.inference.openai_policy.OpenAIPolicy`: any OpenAI-compatible
  endpoint (vLLM, a hosted model).

:func:`build_policy` makes one from a plain config dict (``conf/infer``'s ``policy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.inference.search import LLMCall, LLMReply


@dataclass
class ScriptedPolicy:
    """The k-th call of query q gets ``replies[q][k]``; a call past the script is an error
    (the test's script is wrong), never a silent default. ``seen`` keeps every call."""

    replies: Mapping[str, Sequence[str]]
    seen: list[LLMCall] = field(default_factory=list)

    def generate(self, calls: list[LLMCall]) -> list[LLMReply]:
        out = []
        for call in calls:
            self.seen.append(call)
            script = self.replies.get(call.query_id)
            if script is None:
                raise KeyError(f"scripted policy has no replies for query {call.query_id!r}")
            if call.index >= len(script):
                raise IndexError(f"scripted policy: query {call.query_id!r} made call {call.index} "
                                 f"but the script has {len(script)} replies")
            text = script[call.index]
            out.append(LLMReply(text=text, prompt_tokens=sum(len(str(m.get("content") or "")) for m in call.messages),
                                completion_tokens=len(text)))
        return out


def build_policy(cfg: Mapping[str, Any]) -> Any:
    """A policy from ``{"kind": "hf" | "openai" | "scripted", ...}``; the other keys are the
    policy's own settings (see each class). ``kind: hf`` with ``path`` a local checkpoint
    folder loads it offline."""
    cfg = dict(cfg)
    kind = cfg.pop("kind", None)
    if kind == "hf":
        from tasks.toolbench.inference.hf_policy import HFPolicy

        return HFPolicy(**cfg)
    if kind == "openai":
        from tasks.toolbench.inference.openai_policy import OpenAIPolicy

        return OpenAIPolicy(**cfg)
    if kind == "scripted":
        return ScriptedPolicy(**cfg)
    raise ValueError(f"policy.kind must be 'hf', 'openai' or 'scripted', got {kind!r}")
