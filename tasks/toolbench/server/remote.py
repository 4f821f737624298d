"""The two answers that leave the machine, both off unless configured: an LLM that imagines
the response (any OpenAI-compatible endpoint), and the real RapidAPI through ToolBench's
service (only with a key).

StableToolBench asks GPT-4-turbo at temperature 0 in JSON mode with up to five cached
examples of the same API; the LLM simulator here does the same with any model and its own
prompt, and the server writes the answer back to the cache so the next run replays it.
The real path posts the StableToolBench body to ToolBench's RapidAPI service with the key
and keeps the answer only when it looks like a real response (no auth, rate-limit or
gateway error), as StableToolBench's ``check_result`` does.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_SYSTEM = """You play the server of a REST API. Given the API's documentation, a few real \
calls with their responses, and a new call's arguments, reply with the response this API \
would give, as one JSON object {"error": "", "response": <the response>}. Keep "error" empty \
unless the arguments are wrong for this API, then say what is wrong there and leave \
"response" empty. Make the response specific to the arguments, consistent with the \
examples, and about 100-200 words long. Reply with the JSON object only."""


@dataclass
class LLMSimulatorConfig:
    # Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (vLLM).
    base_url: str
    # Model name the endpoint serves.
    model: str
    # Environment variable holding the API key (none needed for a local vLLM).
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    # Cached calls of the same API shown as examples (StableToolBench: 5, within 2,048 chars).
    max_examples: int = 5
    max_example_chars: int = 2048
    max_tokens: int = 1024
    timeout_s: float = 60.0
    # Ask for JSON mode (response_format=json_object); some servers do not support it.
    json_mode: bool = True


class LLMSimulator:
    def __init__(self, cfg: LLMSimulatorConfig) -> None:
        self.cfg = cfg

    @property
    def name(self) -> str:
        return f"llm:{self.cfg.model}"

    def respond(self, api_doc: dict[str, Any], examples: list[tuple[dict[str, Any], dict[str, Any]]],
                arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The imagined body, or None when the endpoint fails or answers with no JSON object."""
        import requests

        shown = examples[: self.cfg.max_examples]
        while len(json.dumps(shown)) > self.cfg.max_example_chars and len(shown) > 1:
            shown = shown[:-1]
        user = (f"API documentation: {json.dumps(api_doc, ensure_ascii=False)}\n"
                f"Examples (arguments, response): {json.dumps(shown, ensure_ascii=False)[: self.cfg.max_example_chars]}\n"
                f"Arguments of the new call: {json.dumps(arguments, ensure_ascii=False)}\n")
        payload: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}],
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
        }
        if self.cfg.json_mode:
            payload["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            reply = requests.post(f"{self.cfg.base_url.rstrip('/')}/chat/completions", json=payload,
                                  headers=headers, timeout=self.cfg.timeout_s)
            reply.raise_for_status()
            content = reply.json()["choices"][0]["message"]["content"]
        except Exception as err:  # noqa: BLE001 - a failed simulation falls back, never ends the run
            log.warning("LLM simulator %s failed: %s", self.cfg.model, err)
            return None
        return parse_body(content)


def parse_body(content: str) -> dict[str, Any] | None:
    """A server body from model text: a JSON object (code fences allowed); one without the
    ``error``/``response`` fields becomes the response itself."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.startswith("json") else text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    if "response" in data:
        return {"error": str(data.get("error") or ""), "response": data["response"]}
    return {"error": "", "response": data}


# Words in a real response that mean the call did not really work (StableToolBench's
# check_result): such answers are not kept.
_NOT_REAL = ("rate limit", "time out", "timed out", "does not exist", "404", "504", "500", "internal error",
             "api doesn't exists", "service not found", "authoriz", "authenticat", "blocked", "401", "403",
             "credential", "unsubscribe", "disabled for your subscription", "access_denied",
             "invalid consumer key", "status_code=50", "status_code=429")


def looks_real(body: dict[str, Any]) -> bool:
    if body.get("error", None) != "" or "response" not in body:
        return False
    text = str(body["response"]).lower()
    if "got an unexpected keyword argument" in text:
        return True
    return bool(text) and not any(w in text for w in _NOT_REAL)


@dataclass
class RealAPIConfig:
    # ToolBench's RapidAPI service (it holds the RapidAPI subscriptions).
    service_url: str = "http://8.130.32.149:8080/rapidapi"
    # Environment variable with the ToolBench key; a request's own toolbench_key also works.
    key_env: str = "TOOLBENCH_KEY"
    timeout_s: float = 30.0


class RealAPI:
    def __init__(self, cfg: RealAPIConfig) -> None:
        self.cfg = cfg

    def key(self, request_key: str = "") -> str:
        return request_key or os.environ.get(self.cfg.key_env, "")

    def call(self, body: dict[str, Any], request_key: str = "") -> dict[str, Any] | None:
        """The real API's body, or None without a key, on a failure, or when the answer does
        not look real (the caller then simulates)."""
        import requests

        key = self.key(request_key)
        if not key:
            return None
        try:
            reply = requests.post(self.cfg.service_url, json={**body, "toolbench_key": key},
                                  headers={"toolbench_key": key}, timeout=self.cfg.timeout_s)
            if reply.status_code != 200:
                return None
            data = reply.json()
        except Exception as err:  # noqa: BLE001 - the simulator answers instead
            log.warning("real RapidAPI call failed: %s", err)
            return None
        return data if isinstance(data, dict) and looks_real(data) else None
