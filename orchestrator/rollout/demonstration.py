"""Demonstrations as episodes: the text tokenized once, each token labelled by who wrote it.

A demonstration is a list of (source, text) spans. The whole text is tokenized in one call
and each token takes the source of the span its first character lies in: a tokenizer that
merges across a span boundary (BPE) still yields one token sequence equal to tokenizing the
text, and the loss mask comes from character offsets, never from a tokenizer-specific
constant. Special tokens written in the text (``<call>``, ``<submit>``) stay single tokens.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from orchestrator.rollout.episode import Episode, Segment, Source
from orchestrator.task import Demonstration


def span_sources(demo: Demonstration) -> tuple[str, list[int], list[Source]]:
    """(text, start offset of each span, source of each span)."""
    starts, sources, text = [], [], []
    position = 0
    for source, piece in demo:
        starts.append(position)
        sources.append(source)
        text.append(piece)
        position += len(piece)
    return "".join(text), starts, sources


def to_episode(tokenizer: Any, demo: Demonstration, max_length: int, append_eos: bool = True) -> Episode:
    """One demonstration as an :class:`Episode` (mask 1 on model tokens), cut to ``max_length`` tokens.

    The end-of-sequence token closes the demonstration as a model token (the model learns to stop).
    """
    text, starts, sources = span_sources(demo)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
    labels: list[Source] = [sources[max(bisect.bisect_right(starts, start) - 1, 0)] for start, _ in offsets]
    if append_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append("model")
    ids, labels = ids[:max_length], labels[:max_length]
    segments: list[Segment] = []
    for token, label in zip(ids, labels):
        if segments and segments[-1].source == label:
            segments[-1].token_ids.append(token)
        else:
            segments.append(Segment(label, [token], ""))
    for seg in segments:
        seg.text = tokenizer.decode(seg.token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if segments and segments[0].source != "prompt":
        segments.insert(0, Segment("prompt", [], ""))
    return Episode(segments=segments, end_reason="demonstration")


def to_episodes(tokenizer: Any, demos: Sequence[Demonstration], max_length: int) -> list[Episode]:
    """Every demonstration as an episode; one that keeps no model token is an error naming it."""
    episodes = [to_episode(tokenizer, demo, max_length) for demo in demos]
    empty = [i for i, ep in enumerate(episodes) if ep.num_model_tokens == 0]
    if empty:
        first = "".join(t for _, t in demos[empty[0]])[:120]
        raise ValueError(f"{len(empty)} demonstration(s) have no trained token after tokenization and the cut to "
                         f"{max_length} tokens (the first, #{empty[0]}: {first!r}...)")
    return episodes
