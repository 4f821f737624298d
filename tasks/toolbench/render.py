"""One renderer for training and inference: a conversation -> text spans, or -> a prompt.

Training calls :func:`render` (a ``Demonstration``: ``(source, text)`` spans, loss on
``model`` spans only, so the generic SFT tokenization by character offsets applies to any
tokenizer); inference calls :func:`render_prompt` on the conversation so far and parses what
the model wrote with :func:`parse_step`. Both go through the same template object, so a past
step reads the same at inference as at training, which ToolBench's own pair does not do
(#304: its inference drops Action and Action Input from past turns).

``template="toolllama"`` is ToolBench's text (see :mod:`.toolllama`). Every assistant step
ends with the end marker ``</s>``, past ones too, because that is what the model wrote when
it took the step; ToolBench's training text puts ``</s>`` after the last message only. With
``upstream_history=True`` past steps carry no marker, which gives ToolBench's training bytes
exactly (tested against its ``Conversation.get_prompt()``) but no prompt the model will see
at inference. ``template="chat"`` is a tokenizer's chat template with ``tools`` and
``tool_calls`` (:mod:`.chat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tasks.toolbench.conversation import Conversation, Step, Turn
from tasks.toolbench.toolllama import (
    ACTION,
    ACTION_INPUT,
    EOS,
    MAX_OBSERVATION,
    ROLE_LABELS,
    THOUGHT,
    cut_observation,
    step_text,
    system_text,
)

Source = Literal["prompt", "model", "tool"]
Demonstration = list[tuple[Source, str]]
TEMPLATES = ("toolllama", "chat")

# The step a parser returns is the conversation's own record.
ParsedStep = Step


@dataclass(frozen=True)
class ParseError:
    """Why a model's step is not a well-formed step. ``kind`` is one of
    missing_thought, missing_action, missing_action_input, empty_action, multiline_action,
    empty_action_input, extra_step, text_after_end (toolllama) or bad_tool_call (chat)."""

    kind: str
    reason: str
    text: str

    def __bool__(self) -> bool:  # ``if parsed:`` reads as "parsed well"
        return False


class Template(Protocol):
    stop: str

    def demonstration(self, conv: Conversation) -> Demonstration: ...

    def prompt(self, conv: Conversation) -> str: ...

    def parse(self, text: str) -> Step | ParseError: ...


def merge_spans(spans: list[tuple[Source, str]]) -> Demonstration:
    """Adjacent spans of one source joined; empty spans dropped."""
    out: Demonstration = []
    for source, text in spans:
        if not text:
            continue
        if out and out[-1][0] == source:
            out[-1] = (source, out[-1][1] + text)
        else:
            out.append((source, text))
    return out


@dataclass(frozen=True)
class ToolLlamaTemplate:
    eos: str = EOS
    max_observation: int | None = MAX_OBSERVATION
    upstream_history: bool = False

    @property
    def stop(self) -> str:
        return self.eos

    def _turn(self, turn: Turn, last: bool) -> list[tuple[Source, str]]:
        label = ROLE_LABELS[turn.role] + ": "
        if turn.role == "user":
            return [("prompt", label + turn.text)]
        if turn.role == "function":
            return [("prompt", label), ("tool", cut_observation(turn.text, self.max_observation))]
        end = self.eos if (last or not self.upstream_history) else ""
        return [("prompt", label), ("model" if turn.trained else "prompt", step_text(turn.step) + end)]

    def demonstration(self, conv: Conversation) -> Demonstration:
        spans: list[tuple[Source, str]] = [("prompt", "System: " + system_text(conv.system, conv.functions))]
        for i, turn in enumerate(conv.turns):
            spans.append(("prompt", "\n"))
            spans += self._turn(turn, last=i == len(conv.turns) - 1)
        return merge_spans(spans)

    def prompt(self, conv: Conversation) -> str:
        """The text the model continues to write the next step (it ends ``Assistant: ``)."""
        if conv.turns and conv.turns[-1].role == "assistant":
            raise ValueError("the conversation ends with an assistant step: add its observation first")
        return "".join(text for _, text in self.demonstration(conv)) + "\nAssistant: "

    def parse(self, text: str) -> Step | ParseError:
        return parse_step(text, eos=self.eos)


def parse_step(text: str, eos: str = EOS) -> Step | ParseError:
    """A model's step ``\\nThought: …\\nAction: …\\nAction Input: …`` (an ``eos`` at the end is
    allowed, the leading newline optional), strictly: every tag present and in order, the
    action one non-empty line, the input non-empty and followed by no further tag. The thought
    may hold lines of its own (``Action: Call the …`` in ChatGPT's thoughts). Anything else is
    a :class:`ParseError`; round trip: ``parse_step(step_text(s) + eos) == s`` for any step
    whose thought holds no ``Action Input:`` line."""

    def error(kind: str, reason: str) -> ParseError:
        return ParseError(kind, reason, text)

    body = text[: -len(eos)] if eos and text.endswith(eos) else text
    if eos and eos in body:
        return error("text_after_end", f"text after the end marker {eos!r}")
    body = body[1:] if body.startswith("\n") else body
    if not body.startswith(THOUGHT):
        return error("missing_thought", f"the step does not start with {THOUGHT.strip()!r}")
    # The input starts at the first "Action Input:" line; the action is the last "Action:"
    # line before it (ChatGPT's thoughts in the answer trees hold "Action: Call the ..." lines).
    input_at = body.find("\n" + ACTION_INPUT)
    action_at = body.rfind("\n" + ACTION, 0, input_at if input_at >= 0 else len(body))
    if action_at < 0:
        return error("missing_action", f"no {ACTION.strip()!r} line before the action input")
    if input_at < 0:
        return error("missing_action_input", f"no {ACTION_INPUT.strip()!r} line")
    thought = body[len(THOUGHT):action_at]
    action = body[action_at + 1 + len(ACTION):input_at]
    action_input = body[input_at + 1 + len(ACTION_INPUT):]
    if not action.strip():
        return error("empty_action", "the action names no function")
    if "\n" in action:
        return error("multiline_action", "the action spans more than one line")
    if not action_input.strip():
        return error("empty_action_input", "the action input is empty (write {} for no arguments)")
    for tag in (THOUGHT, ACTION, ACTION_INPUT):
        if "\n" + tag in action_input:
            return error("extra_step", f"a second {tag.strip()!r} after the action input")
    return Step(thought=thought, action=action, action_input=action_input)


def make_template(name: str = "toolllama", tokenizer: Any = None, **options: Any) -> Template:
    """``toolllama`` (options: eos, max_observation, upstream_history) or ``chat`` (needs a
    tokenizer with a chat template; options: max_observation)."""
    if name == "toolllama":
        return ToolLlamaTemplate(**options)
    if name == "chat":
        from tasks.toolbench.chat import ChatTemplate

        if tokenizer is None:
            raise ValueError("template=chat needs the model's tokenizer (its chat template renders the turns)")
        return ChatTemplate(tokenizer, **options)
    raise ValueError(f"template: unknown {name!r}; choose one of {', '.join(TEMPLATES)}")


def render(conv: Conversation, template: str | Template = "toolllama", tokenizer: Any = None) -> Demonstration:
    tpl = make_template(template, tokenizer) if isinstance(template, str) else template
    return tpl.demonstration(conv)


def render_prompt(conv: Conversation, template: str | Template = "toolllama", tokenizer: Any = None) -> str:
    tpl = make_template(template, tokenizer) if isinstance(template, str) else template
    return tpl.prompt(conv)
