"""Tools the model can call, and the Ray actors that host them."""

from orchestrator.tools.base import Tool, ToolCall, ToolError, ToolResult

__all__ = ["Tool", "ToolCall", "ToolError", "ToolResult"]
