"""``template=chat``: a tokenizer's own chat template, with ``tools`` and ``tool_calls``.

For models trained with a chat template that knows tools (Qwen2.5, Llama 3.1, Mistral...):
the functions go in as ``tools``, an assistant step as ``content`` (the thought) plus one
``tool_calls`` entry, an observation as a ``tool`` message. Spans come from rendering the
conversation prefix by prefix: the text a step adds after the generation prompt is the model
span. That needs a template whose rendering of a prefix is a prefix of the whole (most are;
Qwen3's, which strips the reasoning of past turns, is not): otherwise a clear error, because
training on text that inference never shows is the bug this renderer exists to avoid.

Parsing a chat model's step reads the Hermes-style ``<tool_call>{"name", "arguments"}</tool_call>``
block that Qwen-family templates use; other templates need their own parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks.toolbench.conversation import Conversation, Step, Turn
from tasks.toolbench.render import Demonstration, ParseError, merge_spans
from tasks.toolbench.toolllama import MAX_OBSERVATION, cut_observation

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"


def _arguments(text: str) -> Any:
    """Templates write ``arguments | tojson``: hand them the object when the text is JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class ChatTemplate:
    tokenizer: Any
    max_observation: int | None = MAX_OBSERVATION

    @property
    def stop(self) -> str:
        return self.tokenizer.eos_token or ""

    def _message(self, turn: Turn, index: int) -> dict[str, Any]:
        if turn.role == "user":
            return {"role": "user", "content": turn.text}
        if turn.role == "function":
            return {"role": "tool", "name": turn.name or "", "tool_call_id": f"call_{index}",
                    "content": cut_observation(turn.text, self.max_observation)}
        call = {"id": f"call_{index + 1}", "type": "function",
                "function": {"name": turn.step.action, "arguments": _arguments(turn.step.action_input)}}
        return {"role": "assistant", "content": turn.step.thought, "tool_calls": [call]}

    def messages(self, conv: Conversation) -> list[dict[str, Any]]:
        return [{"role": "system", "content": conv.system}] + [self._message(t, i) for i, t in enumerate(conv.turns)]

    def tools(self, conv: Conversation) -> list[dict[str, Any]]:
        return [{"type": "function", "function": f} for f in conv.functions]

    def _apply(self, conv: Conversation, count: int, generation_prompt: bool) -> str:
        messages = self.messages(conv)[: count + 1]
        return self.tokenizer.apply_chat_template(
            messages, tools=self.tools(conv), tokenize=False, add_generation_prompt=generation_prompt
        )

    def demonstration(self, conv: Conversation) -> Demonstration:
        spans: list[tuple[str, str]] = []
        done = ""

        def extend(text: str, source: str, what: str) -> None:
            nonlocal done
            if not text.startswith(done):
                raise ValueError(
                    f"{conv.id}: the chat template renders {what} differently once later turns follow "
                    "(not prefix-stable); use template=toolllama or a template without that rewrite"
                )
            spans.append((source, text[len(done):]))
            done = text

        for i, turn in enumerate(conv.turns):
            if turn.role != "assistant":
                continue
            extend(self._apply(conv, i, generation_prompt=True), "prompt", f"the turns before step {i}")
            extend(self._apply(conv, i + 1, generation_prompt=False), "model" if turn.trained else "prompt", f"step {i}")
            source, text = spans[-1]
            cut = text.rfind(self.stop) + len(self.stop) if self.stop and self.stop in text else len(text)
            spans[-1:] = [(source, text[:cut]), ("prompt", text[cut:])]  # what follows the end token is the template's
        extend(self._apply(conv, len(conv.turns), generation_prompt=False), "prompt", "the last turns")
        return merge_spans(self._mark_tool_text(conv, spans))

    def _mark_tool_text(self, conv: Conversation, spans: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Observations inside prompt spans become ``tool`` spans (for display; no loss either way)."""
        observations = [cut_observation(t.text, self.max_observation) for t in conv.turns if t.role == "function"]
        out: list[tuple[str, str]] = []
        for source, text in spans:
            while source == "prompt" and observations and observations[0] and observations[0] in text:
                at = text.index(observations[0])
                out += [("prompt", text[:at]), ("tool", observations[0])]
                text = text[at + len(observations[0]):]
                observations.pop(0)
            out.append((source, text))
        return out

    def prompt(self, conv: Conversation) -> str:
        if conv.turns and conv.turns[-1].role == "assistant":
            raise ValueError("the conversation ends with an assistant step: add its observation first")
        return self._apply(conv, len(conv.turns), generation_prompt=True)

    def parse(self, text: str) -> Step | ParseError:
        """``thought<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (end token allowed)."""
        body = text
        if self.stop and body.endswith(self.stop):
            body = body[: -len(self.stop)]
        start, end = body.find(_OPEN), body.find(_CLOSE)
        if start < 0 or end < start:
            return ParseError("bad_tool_call", f"no {_OPEN}...{_CLOSE} block", text)
        if body[end + len(_CLOSE):].strip() or body.count(_OPEN) > 1:
            return ParseError("extra_step", "text or a second call after the tool call", text)
        try:
            call = json.loads(body[start + len(_OPEN):end])
        except json.JSONDecodeError as err:
            return ParseError("bad_tool_call", f"the tool call is not JSON ({err.msg})", text)
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            return ParseError("bad_tool_call", "the tool call names no function", text)
        arguments = call.get("arguments", {})
        action_input = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        return Step(thought=body[:start].strip(), action=call["name"], action_input=action_input)
