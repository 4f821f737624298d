"""Demonstrations as episodes: the text tokenized once, each token labelled by who wrote it.

A demonstration is a list of (source, text) spans. The whole text is tokenized in one call
and each token takes the source of the span its first character lies in: a tokenizer that
merges across a span boundary (BPE) still yields one token sequence equal to tokenizing the
text, and the loss mask comes from character offsets, never from a tokenizer-specific
constant. Special tokens written in the text (``<call>``, ``<submit>``) stay single tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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
    return _episodes(tokenizer, [demo], max_length, append_eos)[0]


def to_episodes(tokenizer: Any, demos: Sequence[Demonstration], max_length: int) -> list[Episode]:
    """Every demonstration as an episode; one that keeps no model token is an error naming it."""
    episodes = _episodes(tokenizer, demos, max_length, append_eos=True)
    empty = [i for i, ep in enumerate(episodes) if ep.num_model_tokens == 0]
    if empty:
        first = "".join(t for _, t in demos[empty[0]])[:120]
        raise ValueError(f"{len(empty)} demonstration(s) have no trained token after tokenization and the cut to "
                         f"{max_length} tokens (the first, #{empty[0]}: {first!r}...)")
    return episodes


# Texts a fast tokenizer encodes in one (multi-threaded) call: 20,000 ToolBench trajectories
# one by one took 29 s of a run's start, mostly per-call overhead and decoding segments back.
ENCODE_CHUNK = 1024


def _episodes(tokenizer: Any, demos: Sequence[Demonstration], max_length: int, append_eos: bool) -> list[Episode]:
    eos = tokenizer.eos_token_id if append_eos else None
    eos_text = tokenizer.decode([eos], skip_special_tokens=False) if eos is not None else ""
    episodes = []
    for at in range(0, len(demos), ENCODE_CHUNK):
        chunk = [span_sources(demo) for demo in demos[at : at + ENCODE_CHUNK]]
        encoded = tokenizer([text for text, _, _ in chunk], add_special_tokens=False, return_offsets_mapping=True)
        for (text, starts, sources), ids, offsets in zip(chunk, encoded["input_ids"], encoded["offset_mapping"]):
            episodes.append(_labelled(text, starts, sources, list(ids), [o[0] for o in offsets], max_length, eos,
                                      eos_text))
    return episodes


def _labelled(text: str, starts: list[int], sources: list[Source], ids: list[int], char_at: list[int],
              max_length: int, eos: int | None, eos_text: str) -> Episode:
    """Each token takes the source of the span its first character lies in; consecutive tokens
    of one source make a segment, whose text is the demonstration's own characters."""
    span = np.searchsorted(np.asarray(starts), np.asarray(char_at, dtype=np.int64), side="right") - 1
    labels = [sources[i] for i in np.clip(span, 0, None).tolist()]
    if eos is not None:
        ids.append(eos)
        labels.append("model")
        char_at.append(len(text))
    kept = min(len(ids), max_length)
    end = char_at[kept] if kept < len(char_at) else len(text)  # where the kept tokens' text ends
    segments: list[Segment] = []
    first = 0
    for k in range(1, kept + 1):
        if k < kept and labels[k] == labels[first]:
            continue
        lo = char_at[first] if segments else 0
        hi = char_at[k] if k < kept else end
        piece = text[lo:hi] + (eos_text if eos is not None and k == kept and kept == len(ids) else "")
        segments.append(Segment(labels[first], ids[first:k], piece))
        first = k
    if segments and segments[0].source != "prompt":
        segments.insert(0, Segment("prompt", [], ""))
    return Episode(segments=segments, end_reason="demonstration")
