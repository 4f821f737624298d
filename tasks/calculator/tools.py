"""The calculator task's one tool."""

from __future__ import annotations

from typing import Any


def calculator_tool(name: str, round_digits: int, keep_decimals: bool) -> dict[str, Any]:
    return {"_target_": "orchestrator.tools.calculator.Calculator", "name": name, "round_digits": round_digits,
            "keep_decimals": keep_decimals}
