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

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.conversation import Conversation, Step, Turn
from tasks.toolbench.inference.search import LLMCall, LLMReply
from tasks.toolbench.render import ParseError, Template, make_template


def call_seed(seed: int, call: LLMCall) -> int:
    """The sampling seed of one call: a function of the run's seed, the query and the call's
    index only, so it does not depend on batching or on which worker runs the query."""
    digest = hashlib.sha256(f"{seed}\x00{call.query_id}\x00{call.index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def to_conversation(call: LLMCall) -> Conversation:
    """The search's OpenAI-style context as the renderer's conversation record (the same
    record SFT renders, so a past step reads as it did in training)."""
    messages = call.messages
    if not messages or messages[0]["role"] != "system":
        raise ValueError(f"query {call.query_id}: a context must start with the system message")
    turns = []
    for m in messages[1:]:
        if m["role"] == "user":
            turns.append(Turn.user(m["content"]))
        elif m["role"] == "function":
            turns.append(Turn.function(m["content"], name=m.get("name")))
        elif m["role"] == "assistant" and m.get("function_call"):
            fc = m["function_call"]
            turns.append(Turn.assistant(Step(thought=m.get("content") or "", action=fc["name"], action_input=fc["arguments"])))
        else:
            raise ValueError(f"query {call.query_id}: cannot render a {m['role']} message without a function call")
    return Conversation(id=call.query_id, system=messages[0]["content"], functions=tuple(call.functions), turns=tuple(turns))


@dataclass
class ScriptedPolicy:
    """The k-th call of query q gets ``replies[q][k]``; a call past the script is an error
    (the test's script is wrong), never a silent default. ``seen`` keeps every call; token
    counts are the rendered prompt's and the reply's characters."""

    replies: Mapping[str, Sequence[str]]
    template: str = "toolllama"
    seen: list[LLMCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._template: Template = make_template(self.template)

    def parse(self, text: str) -> Step | ParseError:
        return self._template.parse(text)

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
            prompt = self._template.prompt(to_conversation(call))
            out.append(LLMReply(text=text, prompt_tokens=len(prompt), completion_tokens=len(text)))
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
