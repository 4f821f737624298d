"""Any OpenAI-compatible endpoint as the policy (vLLM serving a checkpoint, a hosted model).

Two ways to ask:

* ``mode: completions`` renders the context with the SFT template (``toolllama``) and posts
  it to ``/completions``: the model sees the text it was trained on (vLLM serving our SFT
  checkpoint); its text is parsed by the template's strict parser;
* ``mode: chat`` posts the messages and the functions as ``tools`` to ``/chat/completions``
  (a hosted chat model with native function calling); the first tool call is the step's
  action, the message text its thought, and a reply without a tool call is a parse error.

A batch's requests go out in parallel threads; each carries a seed derived from the run's
seed, the query and the call, for servers that honour it (vLLM does).
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.conversation import Step
from tasks.toolbench.inference.policy import call_seed, to_conversation
from tasks.toolbench.inference.search import LLMCall, LLMReply
from tasks.toolbench.render import ParseError, make_template

log = logging.getLogger(__name__)


@dataclass
class OpenAIPolicyConfig:
    # e.g. http://127.0.0.1:8000/v1
    base_url: str
    model: str
    mode: str = "completions"
    # Template for mode=completions.
    template: str = "toolllama"
    # Environment variable holding the API key (a local vLLM needs none).
    api_key_env: str = "OPENAI_API_KEY"
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    # Requests in flight at once.
    concurrency: int = 16
    timeout_s: float = 120.0
    # Attempts per request before it fails the batch.
    retries: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("completions", "chat"):
            raise ValueError(f"policy.mode must be 'completions' or 'chat', got {self.mode!r}")


class OpenAIPolicy:
    def __init__(self, **cfg: Any) -> None:
        self.cfg = OpenAIPolicyConfig(**cfg)
        self.template = make_template(self.cfg.template) if self.cfg.mode == "completions" else None
        self.stop = [s for s in ((self.template.stop,) if self.template else ()) if s] + list(self.cfg.stop)

    def parse(self, text: str) -> Step | ParseError:
        if self.template is None:
            return ParseError("bad_tool_call", "the reply holds no tool call", text)
        return self.template.parse(text)

    def generate(self, calls: list[LLMCall]) -> list[LLMReply]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.cfg.concurrency, len(calls) or 1))) as pool:
            return list(pool.map(self._one, calls))

    def _post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        import requests

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last: Exception | None = None
        for _ in range(self.cfg.retries):
            try:
                reply = requests.post(f"{self.cfg.base_url.rstrip('/')}/{route}", json=payload, headers=headers,
                                      timeout=self.cfg.timeout_s)
                reply.raise_for_status()
                return reply.json()
            except Exception as err:  # noqa: BLE001 - retried, then raised with the endpoint named
                last = err
        raise RuntimeError(f"policy endpoint {self.cfg.base_url}/{route} failed {self.cfg.retries} times: {last}")

    def _common(self, call: LLMCall) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.cfg.model, "max_tokens": self.cfg.max_new_tokens,
                                   "temperature": self.cfg.temperature, "top_p": self.cfg.top_p,
                                   "seed": call_seed(self.cfg.seed, call) % (2**31)}
        if self.stop:
            payload["stop"] = self.stop
        return payload

    def _one(self, call: LLMCall) -> LLMReply:
        if self.template is not None:
            prompt = self.template.prompt(to_conversation(call))
            data = self._post("completions", {**self._common(call), "prompt": prompt})
            usage = data.get("usage") or {}
            return LLMReply(text=data["choices"][0]["text"], prompt_tokens=usage.get("prompt_tokens", 0),
                            completion_tokens=usage.get("completion_tokens", 0))
        payload = {**self._common(call), "messages": chat_messages(call.messages),
                   "tools": [{"type": "function", "function": f} for f in call.functions]}
        data = self._post("chat/completions", payload)
        usage = data.get("usage") or {}
        message = data["choices"][0]["message"]
        return LLMReply(text=json.dumps(message, ensure_ascii=False), prompt_tokens=usage.get("prompt_tokens", 0),
                        completion_tokens=usage.get("completion_tokens", 0), step=step_of_message(message))


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ToolBench's function_call / function messages in today's tool_calls / tool form."""
    out, last_id = [], None
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m.get("function_call"):
            last_id = f"call_{i}"
            out.append({"role": "assistant", "content": m.get("content") or "",
                        "tool_calls": [{"id": last_id, "type": "function", "function": dict(m["function_call"])}]})
        elif m["role"] == "function":
            out.append({"role": "tool", "tool_call_id": last_id or "call_0", "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def step_of_message(message: dict[str, Any]) -> Step | ParseError:
    calls = message.get("tool_calls") or []
    if not calls and message.get("function_call"):
        calls = [{"function": message["function_call"]}]
    text = json.dumps(message, ensure_ascii=False)
    if not calls:
        return ParseError("bad_tool_call", "the reply holds no tool call", text)
    function = calls[0].get("function") or {}
    name, arguments = function.get("name"), function.get("arguments")
    if not name or not isinstance(arguments, str):
        return ParseError("bad_tool_call", "the tool call lacks a name or its arguments", text)
    return Step(thought=message.get("content") or "", action=name, action_input=arguments)
