"""Constrained action names: after ``Action: `` a step can only name one of the offered functions.

A small or briefly trained model writes the step's format well long before it copies an unseen
function name exactly (docs/toolbench.md: held-out names come out as pieces of the prompt in a
bigram's order). Tool-calling stacks therefore constrain the name to the offered set (vLLM's
guided decoding, OpenAI's strict function calling, llama.cpp grammars): the model still chooses
which function, by its own likelihood, but cannot write one that does not exist. The thought and
the arguments stay free.

The constraint works on text, not token ids, so it holds for any tokenizer: a token is allowed
while the text written since ``Action: `` plus the token's text is still a prefix of
``<name>\\nAction Input: `` for some offered name (or runs past it, for tokens that join the tag
to what follows). The tag is part of the target because a model pulled off the name it wanted
tends to go on with that name's rest (``Finish`` then ``_for_1``) or a second newline.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any, Iterable

from tasks.toolbench.toolllama import ACTION, ACTION_INPUT

MARK = "\n" + ACTION


@lru_cache(maxsize=4)
def _pieces(tokenizer: Any) -> tuple[dict[str, list[int]], dict[int, str]]:
    """Each ordinary token's text as it reads inside a line, grouped by its first character.

    Decoded after an anchor token, so tokenizers that mark a word's start (SentencePiece's
    ``▁``, byte-level BPE's ``Ġ``) give the piece with its leading space.
    """
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1:]
    base = tokenizer.decode(anchor)
    # Only the markers of a text's ends are left out: added tokens such as ToolBench's tags
    # ("\nAction Input: ", tasks/toolbench/tokenizer.py) are how the model writes them.
    special = {getattr(tokenizer, f"{k}_token_id", None) for k in ("bos", "eos", "pad", "unk")} - {None}
    by_first: dict[str, list[int]] = defaultdict(list)
    text: dict[int, str] = {}
    for i in range(len(tokenizer)):
        if i in special:
            continue
        full = tokenizer.decode(anchor + [i])
        if not full.startswith(base) or len(full) == len(base) or "\ufffd" in full:
            continue
        piece = full[len(base):]
        by_first[piece[0]].append(i)
        text[i] = piece
    return dict(by_first), text


class ActionNameConstraint:
    """The tokens a step may write next, given the text it has written, so that its
    ``Action:`` line names one of ``names``."""

    def __init__(self, tokenizer: Any, names: Iterable[str]) -> None:
        self.targets = sorted({n + "\n" + ACTION_INPUT for n in names if n and "\n" not in n})
        if not self.targets:
            raise ValueError("no function names to constrain the action to")
        self.by_first, self.text = _pieces(tokenizer)

    def allowed(self, written: str) -> list[int] | None:
        """Allowed token ids, or None where the step is not writing its action's name."""
        at = written.rfind(MARK)
        if at < 0:
            return None
        name = written[at + len(MARK):]
        open_targets = [t for t in self.targets if t.startswith(name) and t != name]
        if not open_targets:
            return None  # the name and its tag are written: the arguments are free
        ids: list[int] = []
        for first in {t[len(name)] for t in open_targets}:
            for i in self.by_first.get(first, ()):
                grown = name + self.text[i]
                if any(t.startswith(grown) or grown.startswith(t) for t in open_targets):
                    ids.append(i)
        return ids


def function_names(functions: Iterable[dict[str, Any]]) -> list[str]:
    """The names of OpenAI-style function schemas (``Finish`` included when offered)."""
    return [f["name"] for f in functions if isinstance(f, dict) and f.get("name")]
