"""What ToolEval judges: one answer to one query, and the labels a judge gives it.

An :class:`EvalAnswer` is one entry of ToolBench's *converted* answer format (the file that
``toolbench/tooleval/convert_to_answer_format.py`` writes and ``eval_pass_rate.py`` reads):
the query, the tools the model was given, and ``answer = {method, total_steps, final_answer,
answer_details}`` where ``answer_details`` is a chain of ``{role, message, next}`` nodes. It is
kept verbatim because the judge's prompts embed it as JSON (``json.dumps(answer)``), so the
bytes a judge sees match ToolEval's. The fields after it are read off that chain once.

The label values are ToolEval's own (``AnswerStatus.Solved`` etc. in its result files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class AnswerStatus(str, Enum):
    SOLVED = "Solved"
    UNSOLVED = "Unsolved"
    UNSURE = "Unsure"


class TaskStatus(str, Enum):
    SOLVABLE = "Solvable"
    UNSOLVABLE = "Unsolvable"
    UNSURE = "Unsure"


class AnswerPass(str, Enum):
    PASSED = "Passed"
    FAILED = "Failed"
    UNSURE = "Unsure"


def query_order(query_id: str) -> tuple[int, int | str]:
    """Query ids in numeric order where they are numbers ("2" before "10")."""
    return (0, int(query_id)) if query_id.isdigit() else (1, query_id)


FINISH = "Finish"
GIVE_UP = "give_up_and_restart"


@dataclass(frozen=True)
class ApiCall:
    """One tool node of an answer's chain: the function called, its arguments and response.

    ``response`` is the observation text as the tool returned it (ToolBench wraps it as
    ``{"error": "...", "response": "..."}``); Finish calls have an empty response.
    """

    name: str
    arguments: str
    response: str

    @property
    def ok(self) -> bool:
        """The call returned something and reported no error (ToolBench's ``error`` field empty)."""
        if self.name == FINISH:
            return False
        error, body = split_observation(self.response)
        return not error.strip() and body.strip() not in ("", "[]", "{}", "None", "null")

    @property
    def error(self) -> str:
        return split_observation(self.response)[0]

    @property
    def body(self) -> str:
        """The observation without ToolBench's ``{"error", "response"}`` wrapper."""
        return split_observation(self.response)[1]


_WRAPPED = re.compile(r'^\s*\{\s*"error"\s*:\s*"((?:\\.|[^"\\])*)"\s*,\s*"response"\s*:\s*', re.DOTALL)


def split_observation(response: str) -> tuple[str, str]:
    """ToolBench's ``{"error": ..., "response": ...}`` as (error, body).

    The answer files cut long observations short, so the JSON often does not close; the
    wrapper is then read by a regular expression and the body's string escapes undone as far
    as the text goes."""
    try:
        wrapped = json.loads(response)
    except (json.JSONDecodeError, TypeError):
        wrapped = None
    if isinstance(wrapped, dict) and "response" in wrapped:
        body = wrapped["response"]
        return str(wrapped.get("error", "") or ""), body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if wrapped is not None:
        return "", response
    match = _WRAPPED.match(response or "")
    if not match:
        return "", response or ""
    error = _unescape(match.group(1))
    rest = response[match.end():]
    if rest.startswith('"'):
        inner = rest[1:]
        if inner.endswith('"}'):
            inner = inner[:-2]
        return error, _unescape(inner)
    return error, rest


def _unescape(text: str) -> str:
    """JSON string escapes undone; a text cut inside an escape loses its last characters."""
    for cut in range(0, 7):
        try:
            return json.loads('"' + (text[:-cut] if cut else text) + '"')
        except json.JSONDecodeError:
            continue
    return text


@dataclass(frozen=True)
class EvalAnswer:
    """One model's answer to one query, as ToolEval judges it.

    ``model`` names the answer set (``reference`` / ``candidate`` in a win rate);
    ``group`` is the test set (``G1_instruction`` ...); ``relevant_apis`` holds the
    standardised function names of the query's relevant APIs when they are known (the
    ``rules`` judge uses them; ToolEval's LLM judge never sees them).
    """

    query_id: str
    group: str
    model: str
    query: str
    available_tools: list[dict[str, Any]]
    answer: dict[str, Any]
    relevant_apis: tuple[str, ...] | None = None
    calls: tuple[ApiCall, ...] = field(default=(), compare=False)

    @property
    def final_answer(self) -> str:
        """The Finish call's arguments as ToolBench stores them (a JSON string), or ``''``."""
        return str(self.answer.get("final_answer", "") or "")

    @property
    def final_text(self) -> str:
        """The answer's prose: ``final_answer`` inside the Finish JSON, else the whole string."""
        raw = self.final_answer
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        if isinstance(parsed, dict):
            return str(parsed.get("final_answer", "") or "")
        return raw

    @property
    def total_steps(self) -> int:
        return int(self.answer.get("total_steps", 0) or 0)

    @property
    def finished(self) -> bool:
        """ToolEval's check: the last tool node of the chain calls ``Finish``."""
        return bool(self.calls) and self.calls[-1].name == FINISH

    @property
    def gave_up(self) -> bool:
        """ToolEval's check: an empty final answer, or one that says ``give_up_and_restart``."""
        return self.final_answer == "" or GIVE_UP in self.final_answer

    @property
    def tool_names(self) -> list[str]:
        names = []
        for tool in self.available_tools:
            fn = tool.get("function", tool)
            names.append(str(fn.get("name", "")))
        return names
