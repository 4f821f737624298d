"""The calculator's reward: the model's own ``Result=`` against the truth."""

from __future__ import annotations

import re

RESULT_RE = re.compile(r"Result\s*=\s*(-?\d+(?:\.\d+)?)\s*<submit>")


def exact_match_reward(model_text: str, answer: float, tolerance: float) -> float:
    """1.0 when the first ``Result=<number><submit>`` is within ``tolerance`` of ``answer``."""
    match = RESULT_RE.search(model_text)
    if match is None:
        return 0.0
    return 1.0 if abs(float(match.group(1)) - float(answer)) < tolerance else 0.0
