"""An in-process router with the same interface as :class:`ToolRouter`.

For unit tests, benchmarks and quick probes where starting Ray would cost more than the
work; the training loop always uses the Ray pool.
"""

from __future__ import annotations

import time
from typing import Any

import hydra.utils

from orchestrator.tools.base import Tool, ToolCall, ToolResult, call_batch
from orchestrator.tools.pool import ToolStats


class LocalRouter:
    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {t.name: t for t in tools}
        self.stats = ToolStats()

    @classmethod
    def from_configs(cls, tools_cfg: list[dict[str, Any]]) -> "LocalRouter":
        return cls([hydra.utils.instantiate(dict(c)) for c in tools_cfg])

    @property
    def tool_names(self) -> list[str]:
        return sorted(self.tools)

    def call(self, calls: list[ToolCall]) -> list[ToolResult]:
        start = time.perf_counter()
        results = []
        for c in calls:
            tool = self.tools.get(c.tool)
            if tool is None:
                known = ", ".join(self.tool_names) or "none"
                results.append(ToolResult.failure("unknown_tool", f"unknown tool {c.tool!r}; available tools: {known}"))
            else:
                results.append(call_batch(tool, [c.query])[0])
        self.stats.calls += len(calls)
        for r in results:
            if r.error:
                self.stats.add_error(r.error)
        self.stats.seconds += time.perf_counter() - start
        return results

    def reset_stats(self) -> ToolStats:
        stats, self.stats = self.stats, ToolStats()
        return stats

    def shutdown(self) -> None:
        pass
