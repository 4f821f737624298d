"""One query's environment: its functions, the ``Finish`` function, and API calls turned into
requests for the virtual API server.

Mirrors ToolBench's ``rapidapi_wrapper._step`` (OpenBMB/ToolBench @d56fdd8,
``toolbench/inference/Downstream_tasks/rapidapi.py``): ``Finish`` is answered here with
ToolBench's exact observation strings and codes (3 answer, 4 give up, 2 malformed), an
unknown function gets code 1, and every other call becomes a StableToolBench request body
sent to the server (the search yields it; the driver batches it with other queries' calls).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

FINISH = "Finish"


@dataclass(frozen=True)
class APIRef:
    """Where a function's calls go: the server's (category, tool, api) names."""

    category: str
    tool_name: str
    api_name: str


@dataclass(frozen=True)
class APIResult:
    """What a step's function call returned. ``source`` is the server's (cache, simulated,
    llm, real, invalid) or None for answers the environment gives itself (Finish, unknown
    function)."""

    observation: str
    code: int
    source: str | None = None


@dataclass
class QueryEnv:
    """A query as the search sees it."""

    query_id: str
    query: str
    # OpenAI function schemas shown to the model, Finish last (ToolBench's answer "function").
    functions: list[dict[str, Any]]
    # Function name -> the API it calls (every function but Finish).
    apis: dict[str, APIRef]
    task_description: str
    # The raw query record (written back into the answer file's "query" field context).
    record: dict[str, Any] = field(default_factory=dict)

    def resolve(self, action: str) -> tuple[str, APIRef] | None:
        """The function ``action`` names: an exact match, else the first whose name ends
        with it (ToolBench matches with ``endswith``)."""
        if action in self.apis:
            return action, self.apis[action]
        if action:
            for name, ref in self.apis.items():
                if name.endswith(action):
                    return name, ref
        return None

    def step(self, action: str, action_input: str) -> Generator[Any, APIResult, APIResult]:
        from tasks.toolbench.inference.search import APICall  # a cycle only at import time

        if action == FINISH:
            return finish_result(action_input)
        found = self.resolve(action)
        if found is None:
            text = json.dumps({"error": f"No such function name: {action}", "response": ""})
            return APIResult(text, 1)
        _, ref = found
        request = {"category": ref.category, "tool_name": ref.tool_name, "api_name": ref.api_name,
                   "tool_input": action_input, "strip": "", "toolbench_key": ""}
        result = yield APICall(self.query_id, request)
        return result


def finish_result(action_input: str) -> APIResult:
    """ToolBench's answer to a ``Finish`` call, malformed JSON read the way ToolBench reads it."""
    try:
        data = json.loads(action_input, strict=False)
        if not isinstance(data, dict):
            data = {}
    except json.JSONDecodeError:
        data = _scan_finish_arguments(action_input)
    if "return_type" not in data:
        return APIResult('{error:"must have "return_type""}', 2)
    if data["return_type"] == "give_up_and_restart":
        return APIResult('{"response":"chose to give up and restart"}', 4)
    if data["return_type"] == "give_answer":
        if "final_answer" not in data:
            return APIResult('{error:"must have "final_answer""}', 2)
        return APIResult('{"response":"successfully giving the final answer."}', 3)
    return APIResult('{error:""return_type" is not a valid choice"}', 2)


def _scan_finish_arguments(text: str) -> dict[str, Any]:
    """ToolBench's fallback for Finish arguments that are not JSON: look for the keys."""
    data: dict[str, Any] = {}
    if '"return_type": "' in text:
        if '"return_type": "give_answer"' in text:
            data["return_type"] = "give_answer"
        elif '"return_type": "give_up_and_restart"' in text:
            data["return_type"] = "give_up_and_restart"
        else:
            start = text.find('"return_type": "') + len('"return_type": "')
            data["return_type"] = text[start:text.find('",')]
    if '"final_answer": "' in text:
        data["final_answer"] = text[text.find('"final_answer": "') + len('"final_answer": "'):]
    return data
