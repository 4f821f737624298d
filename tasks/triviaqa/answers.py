"""Answers: TriviaQA's normalisation, the model's final answer, and the reward.

All pure functions of strings. The reward reads only the model's own text (the caller passes
``episode.model_text()``), so an alias inside the retriever's passage earns nothing: that was
the seed's bug, whose reward read the last text segment, often the tool's.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

# Punctuation as TriviaQA's evaluation treats it: ASCII punctuation plus typographic quotes.
_PUNCTUATION = frozenset(string.punctuation) | frozenset("\u2018\u2019\u00b4`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")

# The final answer: ``Result=<answer><submit>`` inside one model turn (no marker, no newline in
# between, so text cannot be stitched across a tool call).
RESULT_RE = re.compile(r"Result\s*=\s*([^<>\n]*?)\s*<submit>")

CRITERIA = ("exact", "toolformer")

# ToolFormer counts an answer right when the truth is among the first 20 words the model wrote.
TOOLFORMER_WORDS = 20


def normalize_answer(text: str) -> str:
    """TriviaQA's normalisation: underscores to spaces, lower case, punctuation (typographic
    quotes included) to spaces, articles a/an/the dropped, whitespace collapsed."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def extract_answer(model_text: str) -> str | None:
    """The first ``Result=...<submit>`` answer in the model's text, or None."""
    match = RESULT_RE.search(model_text)
    return None if match is None else match.group(1)


def _contains_words(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def answer_score(answer: str, aliases: Iterable[str], criterion: str = "exact") -> float:
    """1.0 when ``answer`` matches an alias after normalisation, else 0.0.

    ``exact``: the normalised answer equals a normalised alias (TriviaQA's exact match).
    ``toolformer``: a normalised alias appears, as whole words, among the answer's first 20
    words (ToolFormer's criterion for question answering).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    normalized = normalize_answer(answer)
    if not normalized:
        return 0.0
    targets = {t for t in (normalize_answer(a) for a in aliases) if t}
    if criterion == "exact":
        return 1.0 if normalized in targets else 0.0
    words = normalized.split()[:TOOLFORMER_WORDS]
    return 1.0 if any(_contains_words(words, t.split()) for t in targets) else 0.0


def answer_reward(model_text: str, aliases: Iterable[str], criterion: str = "exact") -> float:
    """Score the model's own final answer; no ``Result=...<submit>`` earns 0."""
    answer = extract_answer(model_text)
    return 0.0 if answer is None else answer_score(answer, aliases, criterion)
