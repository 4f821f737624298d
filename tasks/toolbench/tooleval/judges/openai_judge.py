"""ToolEval's LLM judge against any OpenAI-compatible ``/chat/completions`` endpoint.

Each question is one request built as ToolEval builds it (``OpenAINormalizedEvaluator.
function_call``): a single user message, the template filled with ``str.format``, the
function schema with a required ``reason``, the function forced. ``call_style="tools"`` sends
``tools``/``tool_choice`` as StableToolBench does (and vLLM, SGLang, current OpenAI accept);
``"functions"`` sends ToolBench's legacy ``functions``/``function_call``. The answers are
serialised with ``json.dumps`` defaults, as ToolEval's are, so the prompt bytes match.

What we add: the judge run goes in the request as ``seed`` (so runs are distinct requests
and distinct cache entries), every reply is cached by its canonical request, tokens are
counted, and an API key is never sent over plain HTTP to a host other than this machine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable
from urllib.parse import urlparse

import httpx

from tasks.toolbench.tooleval.judges.base import Judge, JudgeError, Verdict
from tasks.toolbench.tooleval.judges.cache import JudgeCost, RequestCache
from tasks.toolbench.tooleval.prompts import PromptSet, load_prompts
from tasks.toolbench.tooleval.records import AnswerStatus, EvalAnswer, TaskStatus

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# ToolEval's process_answer: what a win-rate comparison shows of each answer.
FINAL_ANSWER_CHARS = 1000
ANSWER_DETAIL_NODES = 3000


@dataclass
class OpenAIJudgeConfig:
    """Where the judge lives and how to ask it.

    ``base_url`` ends before ``/chat/completions`` (``http://127.0.0.1:8000/v1``);
    ``model`` overrides the prompt file's (ToolEval: gpt-3.5-turbo-16k); the key is read from
    the environment variable ``api_key_env`` and is optional for a local server.
    """

    base_url: str
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    call_style: str = "tools"
    prompts: str = "tooleval_default"
    cache_path: str | None = None
    timeout_s: float = 120.0
    max_attempts: int = 3
    seed: int = 0
    send_seed: bool = True
    extra_request: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.call_style not in ("tools", "functions"):
            raise ValueError(f"call_style must be 'tools' or 'functions', got {self.call_style!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


def shown_answer(answer: EvalAnswer) -> dict[str, Any]:
    """An answer as ToolEval's ``process_answer`` shows it in a comparison: without ``method``,
    ``final_answer`` cut to 1000 characters and ``answer_details`` to 3000 nodes."""
    shown = {k: v for k, v in answer.answer.items() if k != "method"}
    shown["final_answer"] = str(shown.get("final_answer", ""))[:FINAL_ANSWER_CHARS]
    details = shown.get("answer_details", [])
    shown["answer_details"] = details[:ANSWER_DETAIL_NODES] if isinstance(details, list) else details
    return shown


class OpenAIJudge(Judge):
    """ToolEval's prompts sent to an OpenAI-compatible endpoint, cached and counted."""

    def __init__(self, config: OpenAIJudgeConfig, prompts: PromptSet | None = None,
                 client: httpx.Client | None = None) -> None:
        self.config = config
        self.prompts = prompts or load_prompts(config.prompts)
        self.model = config.model or str(self.prompts.request.get("model", ""))
        self.name = f"openai:{self.model}"
        self.cache = RequestCache(config.cache_path)
        self.cost = JudgeCost()
        self._cost_lock = threading.Lock()
        headers = {}
        key = os.environ.get(config.api_key_env, "")
        if key:
            url = urlparse(config.base_url)
            if url.scheme != "https" and url.hostname not in LOOPBACK:
                raise ValueError(f"refusing to send ${config.api_key_env} over plain HTTP to {url.hostname}; "
                                 "use https, or unset the key for an unauthenticated local server")
            headers["Authorization"] = f"Bearer {key}"
        self._client = client or httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers,
                                              timeout=config.timeout_s)

    # ------------------------------------------------------------------ the four questions

    def check_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        reply = self.ask("check_answer_status", {"query": answer.query, "answer": answer.final_answer}, run,
                         valid=_one_of("answer_status", AnswerStatus))
        return _status(reply, "answer_status")

    def parse_answer_status(self, answer: EvalAnswer, run: int) -> Verdict:
        reply = self.ask("parse_answer_status", {"query": answer.query, "answer": json.dumps(answer.answer)}, run,
                         valid=_one_of("answer_status", AnswerStatus))
        return _status(reply, "answer_status")

    def check_task_solvable(self, answer: EvalAnswer, run: int) -> Verdict:
        task = {"query": answer.query, "available_tools": answer.available_tools}
        reply = self.ask("check_task_solvable", {"task": json.dumps(task)}, run,
                         valid=_one_of("task_status", TaskStatus))
        return _status(reply, "task_status")

    def select_better_answer(self, shown: tuple[EvalAnswer, EvalAnswer], run: int) -> Verdict:
        first, second = shown
        fields = {"query": first.query, "answer_0": json.dumps(shown_answer(first)),
                  "answer_1": json.dumps(shown_answer(second))}
        reply = self.ask("select_better_answer", fields, run,
                         valid=lambda r: _index(r) in (0, 1))
        return Verdict(label=str(_index(reply)), reason=str(reply.get("reason", "")))

    # ------------------------------------------------------------------ requests

    def request_body(self, function: str, fields: dict[str, str], run: int) -> dict[str, Any]:
        """The body ToolEval would send for ``function``, plus the run's seed."""
        prompt = self.prompts.functions[function]
        body: dict[str, Any] = {k: v for k, v in self.prompts.request.items()}
        body.update(self.config.extra_request)
        body["model"] = self.model
        body["messages"] = [{"role": "user", "content": prompt.render(**fields)}]
        schema = prompt.schema(with_reason=True)
        if self.config.call_style == "tools":
            body["tools"] = [{"type": "function", "function": schema}]
            body["tool_choice"] = {"type": "function", "function": {"name": function}}
        else:
            body["functions"] = [schema]
            body["function_call"] = {"name": function}
        if self.config.send_seed:
            body["seed"] = self.config.seed + run
        return body

    def ask(self, function: str, fields: dict[str, str], run: int,
            valid: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The parsed function arguments of the judge's reply (from the cache when it has them)."""
        body = self.request_body(function, fields, run)
        required = self.prompts.functions[function].schema(with_reason=True)["parameters"]["required"]
        cached = self.cache.get(body)
        if cached is not None:
            usage = cached.get("usage") or {}
            with self._cost_lock:
                self.cost.cache_hits += 1
                self.cost.cached_prompt_tokens += int(usage.get("prompt_tokens", 0) or 0)
                self.cost.cached_completion_tokens += int(usage.get("completion_tokens", 0) or 0)
            return self._arguments(cached, function)
        problem = ""
        for attempt in range(self.config.max_attempts):
            if attempt:
                with self._cost_lock:
                    self.cost.retries += 1
            response = self._post(body)
            try:
                arguments = self._arguments(response, function)
            except JudgeError as err:
                problem = str(err)
                continue
            missing = [k for k in required if k not in arguments]
            if missing:
                problem = f"reply lacks {missing}"
                continue
            if valid is not None and not valid(arguments):
                problem = f"invalid reply {arguments}"
                continue
            self.cache.put(body, response)
            return arguments
        raise JudgeError(f"{self.name}: {function} gave no valid reply in {self.config.max_attempts} "
                         f"attempts: {problem}")

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as err:
            raise JudgeError(f"{self.name}: {self.config.base_url}: {type(err).__name__}: {err}") from err
        with self._cost_lock:
            self.cost.requests += 1
        if reply.status_code != 200:
            raise JudgeError(f"{self.name}: HTTP {reply.status_code} from {self.config.base_url}: {reply.text[:300]}")
        response = reply.json()
        usage = response.get("usage") or {}
        with self._cost_lock:
            self.cost.prompt_tokens += int(usage.get("prompt_tokens", 0) or 0)
            self.cost.completion_tokens += int(usage.get("completion_tokens", 0) or 0)
        return response

    @staticmethod
    def _arguments(response: dict[str, Any], function: str) -> dict[str, Any]:
        try:
            message = response["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as err:
            raise JudgeError(f"reply has no choices[0].message: {str(response)[:200]}") from err
        raw = None
        if message.get("tool_calls"):
            raw = message["tool_calls"][0].get("function", {}).get("arguments")
        elif message.get("function_call"):
            raw = message["function_call"].get("arguments")
        if raw is None:
            raise JudgeError(f"reply did not call {function}: {str(message)[:200]}")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as err:
            raise JudgeError(f"{function} arguments are not JSON: {raw[:200]!r}") from err
        if not isinstance(arguments, dict):
            raise JudgeError(f"{function} arguments are not an object: {raw!r}")
        return arguments

    def close(self) -> None:
        self._client.close()


def _one_of(key: str, kind: type[Enum]) -> Callable[[dict[str, Any]], bool]:
    values = {member.value for member in kind}
    return lambda reply: reply.get(key) in values


def _status(reply: dict[str, Any], key: str) -> Verdict:
    return Verdict(label=str(reply[key]), reason=str(reply.get("reason", "")))


def _index(reply: dict[str, Any]) -> int | None:
    try:
        return int(reply.get("index"))
    except (TypeError, ValueError):
        return None
