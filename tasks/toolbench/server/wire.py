"""The virtual API server's request and response, as StableToolBench's ``POST /virtual`` has them.

Request body (THUNLP-MT/StableToolBench @aa4ed9f, ``server/main.py``, ``Info``):
``{"category", "tool_name", "api_name", "tool_input", "strip", "toolbench_key"}`` where
``tool_input`` is the model's argument string (or an already parsed object).
Response body: ``{"error": str, "response": ...}``. ToolBench's client turns that into the
observation the model sees, ``json.dumps(body)`` cut at 1,024 characters plus ``...``, and a
status code read off the ``error`` text; :class:`APIResponse` does the same here, so the
actor path and the HTTP path give the same observation for the same body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.toolbench.toolllama import MAX_OBSERVATION as MAX_OBSERVATION_CHARS
from tasks.toolbench.toolllama import cut_observation  # noqa: F401 - re-exported

# Where an answer came from; a run reports how many of each.
CACHE, SIMULATED, LLM, REAL, INVALID = "cache", "simulated", "llm", "real", "invalid"
SOURCES = (CACHE, SIMULATED, LLM, REAL, INVALID)

# ToolBench's client reads these error texts as status codes (rapidapi.py, _step).
_ERROR_CODES = {
    "API not working error...": 6,
    "Unauthorized error...": 7,
    "Unsubscribed error...": 8,
    "Too many requests error...": 9,
    "Rate limit per minute error...": 10,
    "Message error...": 11,
}
# ToolBench's code for "an error in the input": its client never sets it for an API call
# (a bad call reads 0 there); we give it to calls our validation rejects.
CODE_BAD_INPUT = 2

REQUEST_FIELDS = ("category", "tool_name", "api_name", "tool_input")
# The HTTP header that carries an answer's source (the body must stay {"error", "response"}).
SOURCE_HEADER = "x-toolrl-source"


class BadRequest(ValueError):
    """A request body the server cannot read (missing field, wrong type)."""


@dataclass(frozen=True)
class APIRequest:
    category: str
    tool_name: str
    api_name: str
    tool_input: str | dict[str, Any]
    strip: str = ""
    toolbench_key: str = ""

    @classmethod
    def from_body(cls, body: Any) -> "APIRequest":
        if not isinstance(body, Mapping):
            raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
        missing = [k for k in REQUEST_FIELDS if k not in body]
        if missing:
            raise BadRequest(f"request body lacks {', '.join(missing)} (StableToolBench's fields: "
                             f"{', '.join(REQUEST_FIELDS)}, strip, toolbench_key)")
        for k in ("category", "tool_name", "api_name"):
            if not isinstance(body[k], str):
                raise BadRequest(f"request field {k!r} must be a string, got {type(body[k]).__name__}")
        if not isinstance(body["tool_input"], (str, dict)):
            raise BadRequest(f"request field 'tool_input' must be a string or an object, got {type(body['tool_input']).__name__}")
        return cls(category=body["category"], tool_name=body["tool_name"], api_name=body["api_name"],
                   tool_input=body["tool_input"], strip=str(body.get("strip") or ""),
                   toolbench_key=str(body.get("toolbench_key") or ""))

    def to_body(self) -> dict[str, Any]:
        return {"category": self.category, "tool_name": self.tool_name, "api_name": self.api_name,
                "tool_input": self.tool_input, "strip": self.strip, "toolbench_key": self.toolbench_key}


@dataclass(frozen=True)
class APIResponse:
    """One answer. ``text`` is set when the answer is a recorded observation that the body
    cannot reproduce byte for byte (an observation ToolBench had already cut)."""

    body: dict[str, Any]
    source: str
    text: str | None = None

    @property
    def error(self) -> str:
        return str(self.body.get("error", ""))

    def observation(self, max_chars: int = MAX_OBSERVATION_CHARS) -> str:
        text = self.text if self.text is not None else json.dumps(self.body)
        return cut_observation(text, max_chars)

    @property
    def status_code(self) -> int:
        if self.source == INVALID:
            return CODE_BAD_INPUT
        return _ERROR_CODES.get(self.error, 0)

    def to_record(self, max_chars: int = MAX_OBSERVATION_CHARS) -> dict[str, Any]:
        """What the tool actor returns (as JSON text): the observation, its code and source."""
        return {"observation": self.observation(max_chars), "code": self.status_code, "source": self.source}


def error_body(error: str) -> dict[str, Any]:
    return {"error": error, "response": ""}
