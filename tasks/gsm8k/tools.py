"""GSM8K's one tool: the sandboxed Python interpreter (docs/sandbox.md)."""

from __future__ import annotations

from typing import Any


def interpreter_tool(name: str, timeout_s: float, max_output_chars: int, workers: int, isolation: str) -> dict[str, Any]:
    return {"_target_": "orchestrator.tools.python_interpreter.PythonInterpreter", "name": name,
            "timeout_s": timeout_s, "max_output_chars": max_output_chars, "num_workers": workers,
            "isolation": isolation}
