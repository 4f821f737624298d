"""The episode record: what one rollout produced, kept as token ids with their sources.

Ids are never re-tokenized: what the model sampled is what PPO trains on. ``mask`` marks
the model's own tokens (1); prompt and tool tokens are 0, so they are neither time steps
for GAE nor targets of the loss. ``segments`` keep who wrote each span, so the reward can
read the model's text alone and the renderers can colour tool output.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["prompt", "model", "tool"]

_STYLE = {"prompt": "dim", "model": "bold", "tool": "cyan"}
_HTML_COLOUR = {"prompt": "#777777", "model": "#000000", "tool": "#0a7d8c"}


@dataclass
class Segment:
    """A contiguous span written by one source; ``error`` is set on a failed tool call."""

    source: Source
    token_ids: list[int]
    text: str
    error: str | None = None


@dataclass
class Episode:
    """One multi-turn rollout. ``ids``/``mask`` cover the prompt and everything after it."""

    segments: list[Segment]
    meta: dict[str, Any] = field(default_factory=dict)
    end_reason: str = ""
    reward: float = 0.0
    num_calls: int = 0
    num_tool_errors: int = 0

    @classmethod
    def from_prompt(cls, prompt_ids: list[int], prompt_text: str, meta: dict[str, Any] | None = None) -> "Episode":
        return cls(segments=[Segment("prompt", list(prompt_ids), prompt_text)], meta=dict(meta or {}))

    @property
    def ids(self) -> list[int]:
        return [t for s in self.segments for t in s.token_ids]

    @property
    def mask(self) -> list[int]:
        return [int(s.source == "model") for s in self.segments for _ in s.token_ids]

    def __len__(self) -> int:
        return sum(len(s.token_ids) for s in self.segments)

    @property
    def prompt_len(self) -> int:
        return len(self.segments[0].token_ids)

    @property
    def num_model_tokens(self) -> int:
        return sum(len(s.token_ids) for s in self.segments if s.source == "model")

    def model_text(self) -> str:
        """The model's own text, turns joined: what rewards read (never the tool's text)."""
        return "".join(s.text for s in self.segments if s.source == "model")

    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def add(self, source: Source, token_ids: list[int], text: str, error: str | None = None) -> None:
        if token_ids:
            self.segments.append(Segment(source, list(token_ids), text, error))

    # --- rendering -----------------------------------------------------------------
    def show_text(self, console: Any = None) -> None:
        """Print the episode in a terminal, tool output coloured (rich)."""
        from rich.console import Console
        from rich.text import Text

        out = Text()
        for s in self.segments:
            out.append(s.text, style="red" if s.error else _STYLE[s.source])
        out.append(f"\n[reward={self.reward:g} end={self.end_reason}]", style="italic")
        (console or Console()).print(out)

    def show_tokens(self, tokenizer: Any, console: Any = None) -> None:
        """Print every token with its id, coloured by source: the view for masking bugs."""
        from rich.console import Console
        from rich.text import Text

        out = Text()
        for s in self.segments:
            for t in s.token_ids:
                piece = tokenizer.decode([t])
                out.append(f"{piece!r}:{t} ", style=_STYLE[s.source])
        (console or Console()).print(out)

    def to_html(self) -> str:
        """HTML for W&B tables: prompt grey, model black, tool teal, errors red."""
        spans = []
        for s in self.segments:
            colour = "#c0392b" if s.error else _HTML_COLOUR[s.source]
            weight = "bold" if s.source == "model" else "normal"
            spans.append(f'<span style="color:{colour};font-weight:{weight}">{html.escape(s.text)}</span>')
        footer = f"<br/><i>reward={self.reward:g} end={html.escape(self.end_reason)}</i>"
        return '<pre style="white-space:pre-wrap">' + "".join(spans) + footer + "</pre>"
