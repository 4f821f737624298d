"""The tool protocol: what the environment needs from a tool, and nothing more.

A tool is an object with a ``name`` (what the model writes between ``<request>`` and the
query), a ``description`` (what a prompt may show) and ``call(query) -> str``. Tools are
built inside Ray actors from a Hydra ``_target_`` config, so they need not be picklable;
``call_batch`` lets a tool answer many queries at once (a search index does this far
faster than one by one), and defaults to a loop.

Errors are data, not exceptions, once they leave the actor: the model sees an error
observation and the run goes on (see :class:`ToolResult`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class ToolError(Exception):
    """Raised by a tool for a query it cannot answer; the message becomes the observation."""


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str

    def call(self, query: str) -> str: ...


def call_batch(tool: Tool, queries: list[str]) -> list[ToolResult]:
    """Answer ``queries`` with ``tool``, turning each failure into an error result.

    Uses the tool's own ``call_batch`` when it has one (it must return one string per
    query); a tool whose batch call raises falls back to one call per query so a single
    bad query does not fail its neighbours.
    """
    batched = getattr(tool, "call_batch", None)
    if batched is not None:
        try:
            return [ToolResult(text=str(text)) for text in batched(queries)]
        except Exception:  # noqa: BLE001 - retried one by one below to isolate the bad query
            pass
    results = []
    for query in queries:
        try:
            results.append(ToolResult(text=str(tool.call(query))))
        except ToolError as err:
            results.append(ToolResult.failure("tool_error", str(err)))
        except Exception as err:  # noqa: BLE001 - a tool bug must not end the run
            results.append(ToolResult.failure("tool_error", f"{type(err).__name__}: {err}"))
    return results


@dataclass(frozen=True)
class ToolCall:
    """One request the model made: ``<request><{tool}>{query}<call>``."""

    tool: str
    query: str


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer. ``error`` names the failure kind (``None`` on success).

    Kinds: ``tool_error`` (the tool raised), ``timeout`` (no answer in time; the actor was
    restarted), ``actor_died`` (the actor crashed), ``unknown_tool`` (no such tool),
    ``bad_request`` (the call could not be parsed).
    """

    text: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, kind: str, message: str) -> "ToolResult":
        return cls(text=f"Error: {message}", error=kind)
