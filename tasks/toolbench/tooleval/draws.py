"""Every random choice ToolEval makes, made reproducible and independent of thread order.

ToolEval flips coins with the global ``random`` module from 20-30 threads (``random.random()
< 0.5`` for Unsure and for ties, ``random.choice`` between identical answers and evaluator
copies), so which query gets which draw depends on the order in which replies arrive. Here
each draw has its own generator, seeded by the run's seed and the draw's name and place
(``"unsure", query_id, run``): the same seed gives the same labels however the calls are
scheduled, and a different seed changes only what was left to chance.
"""

from __future__ import annotations

import random


def draw(seed: int, *where: object) -> random.Random:
    """A generator for one named draw; ``random.Random`` seeds a string through SHA-512,
    so the stream is the same in every process (unlike ``hash()``)."""
    return random.Random("|".join([str(seed), *map(str, where)]))


def coin(seed: int, *where: object) -> bool:
    """ToolEval's ``random.random() < 0.5``: True with probability one half."""
    return draw(seed, *where).random() < 0.5
