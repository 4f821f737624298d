"""GSM8K's reward: the number after ``Result=`` in the model's own text, within the seed's tolerance."""

from __future__ import annotations

import re

# The seed's pattern, plus thousands separators (GSM8K's own answers use them: 1,080).
RESULT_RE = re.compile(r"Result\s*=\s*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)\s*<submit>")


def result_reward(model_text: str, answer: float, tolerance: float) -> float:
    """1.0 when the first ``Result=<number><submit>`` is within ``tolerance`` of ``answer``."""
    match = RESULT_RE.search(model_text)
    if match is None:
        return 0.0
    return 1.0 if abs(float(match.group(1).replace(",", "")) - float(answer)) < tolerance else 0.0
