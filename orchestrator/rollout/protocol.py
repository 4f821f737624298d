"""The text protocol a policy writes to use a tool.

::

    <request><ToolName>query<call>   -> the environment appends the tool's output + <response>
    ...                              -> generation goes on
    Result=42<submit>                -> the episode ends

The four markers are single special tokens; generation stops on their ids.
"""

from __future__ import annotations

import re

from orchestrator.tools.base import ToolCall

REQUEST, CALL, RESPONSE, SUBMIT = "<request>", "<call>", "<response>", "<submit>"
PROTOCOL_TOKENS = (REQUEST, CALL, RESPONSE, SUBMIT)

_CALL_RE = re.compile(r"<request>\s*<([^<>\s]+)>(.*)<call>\s*$", re.DOTALL)


def tool_tag(name: str) -> str:
    """``Calculator`` -> ``<Calculator>``: a tool's name as the model writes it (one token)."""
    return f"<{name}>"


def parse_call(turn_text: str) -> ToolCall | None:
    """``...<request><Tool>query<call>`` -> ToolCall(Tool, query); None if malformed."""
    start = turn_text.rfind(REQUEST)
    if start < 0:
        return None
    match = _CALL_RE.match(turn_text[start:])
    if match is None:
        return None
    return ToolCall(tool=match.group(1), query=match.group(2).strip())
