"""Answer trees -> training conversations, in ToolBench's format or packed.

``format="toolbench"`` is ToolBench's converter (``preprocess/preprocess_toolllama_data.py``
@d56fdd8) re-implemented: one instance per ``train_messages`` entry, the whole prefix again
each time, only its last assistant step trained; an entry whose last assistant message makes
no call is dropped; an assistant message without a call contributes its text as the thought
of the next call; a call's own ``content`` is dropped (ToolBench issue #67: 122 of the
sample's 124 ``Thought:`` lines come out empty). :func:`to_sft_instances` writes those
instances as ToolBench's JSON, byte for byte (the golden test).

``format="packed"`` trains the same (context, target) pairs with each trajectory once: a
step's instance that extends the previous one (same system, functions and earlier turns) is
merged into it, so one instance carries every step of a path with all of them trained.
DFSDT's diversity prompt is a user message that later steps of a path may no longer have
(the search backtracked past it): there the prefix changes and a new instance starts.

``keep_thoughts=True`` keeps the thought the assistant wrote with its call (ToolBench drops
it); the golden format needs ``keep_thoughts=False``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tasks.toolbench.conversation import Conversation, Step, Turn
from tasks.toolbench.formats import AnswerFile, At, Message, SftInstance, SftTurn
from tasks.toolbench.formats.answers import read_message
from tasks.toolbench.toolllama import step_text, system_text

FORMATS = ("packed", "toolbench")
_TOOL_LINE = re.compile(r"^\d+\.([^:\n]+): ", re.MULTILINE)
_TOOLS_HEADER = "You have access of the following tools:\n"


def _thought(pending: list[str], content: str | None, keep_thoughts: bool) -> str:
    if not keep_thoughts:
        # ToolBench's "\nThought: " per call-less message before the call, the call's own text dropped.
        return "\nThought: ".join(pending)
    return "\n".join([*pending, *([content] if content else [])])


def tools_of(system: str, functions: tuple[dict, ...]) -> list[str]:
    """Standard tool names a conversation offers: from the system message's numbered tool list
    (DFSDT's task description), else from the function names' ``_for_<tool>`` suffix."""
    if _TOOLS_HEADER in system:
        return _TOOL_LINE.findall(system.split(_TOOLS_HEADER, 1)[1])
    names = [f["name"].rsplit("_for_", 1)[1] for f in functions if "_for_" in f["name"]]
    return list(dict.fromkeys(names))


def _turns(messages: tuple[Message, ...], keep_thoughts: bool, where: str) -> list[Turn] | None:
    """The turns after the system message, ToolBench's way; None when the last message is an
    assistant message without a call (ToolBench trains only on steps that call a function)."""
    turns: list[Turn] = []
    pending: list[str] = []
    last = len(messages) - 1
    for position, message in enumerate(messages[1:], start=1):
        if message.role == "system":
            raise ValueError(f"{where}[{position}]: a second system message")
        if message.role != "assistant":
            text = message.content or ""
            turns.append(Turn.user(text) if message.role == "user" else Turn.function(text, message.name))
            pending = []
            continue
        call = message.function_call
        if call is None:
            if position == last:
                return None
            pending.append(message.content or "")
            continue
        step = Step(_thought(pending, message.content, keep_thoughts), call.name, call.arguments)
        turns.append(Turn.assistant(step, trained=position == last))
        pending = []
    return turns


def step_conversation(answer: AnswerFile, index: int, keep_thoughts: bool = True) -> Conversation | None:
    """The instance ToolBench makes of ``train_messages[index]``; None where it makes none."""
    messages: tuple[Message, ...] = answer.train_messages[index]
    where = f"{answer.file}: answer_generation.train_messages[{index}]"
    if messages[0].role != "system":
        raise ValueError(f"{where}[0]: the first message must be the system message")
    turns = _turns(messages, keep_thoughts, where)
    if turns is None:
        return None
    last = len(messages) - 1
    return Conversation(
        id=answer.step_ids[index] if answer.step_ids else f"Step {last}: {answer.query}",
        system=messages[0].content or "",
        functions=answer.functions,
        turns=tuple(turns),
        meta=_meta(answer, messages[0].content or ""),
    )


def conversation_from_messages(
    messages: list[dict[str, Any]] | list[Message],
    functions: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    keep_thoughts: bool = True,
    id: str = "",
) -> Conversation:
    """An OpenAI-style message list (a DFSDT node's history: system, user, assistant with
    ``function_call``, function) as a conversation, for :func:`~tasks.toolbench.render.render_prompt`.
    Nothing is marked trained; a trailing assistant message without a call is left out."""
    parsed = tuple(m if isinstance(m, Message) else read_message(At(m, "messages", f"[{i}]")) for i, m in enumerate(messages))
    if not parsed or parsed[0].role != "system":
        raise ValueError("messages[0]: the first message must be the system message")
    while len(parsed) > 1 and parsed[-1].role == "assistant" and parsed[-1].function_call is None:
        parsed = parsed[:-1]
    turns = _turns(parsed, keep_thoughts, "messages") or []
    return Conversation(id, parsed[0].content or "", tuple(functions), tuple(t.untrained() for t in turns))


def _meta(answer: AnswerFile, system: str) -> dict:
    path = Path(answer.file)
    return {
        "file": answer.file,
        "group": path.parent.name,
        "query_id": answer.query_id,
        "query": answer.query,
        "finish_type": answer.finish_type,
        "tools": tools_of(system, answer.functions),
    }


def _extends(prefix: Conversation, longer: Conversation) -> bool:
    if (prefix.system, prefix.functions) != (longer.system, longer.functions):
        return False
    if len(longer.turns) <= len(prefix.turns):
        return False
    return all(a.untrained() == b.untrained() for a, b in zip(prefix.turns, longer.turns))


def pack(instances: list[Conversation]) -> list[Conversation]:
    """Merge each instance into the previous one when it extends it (see the module doc)."""
    packed: list[Conversation] = []
    for inst in instances:
        if packed and _extends(packed[-1], inst):
            prev = packed[-1]
            turns = [old if old.trained else new for old, new in zip(prev.turns, inst.turns)]
            turns += inst.turns[len(prev.turns):]
            merged = prev.meta.get("merged_ids", [prev.id]) + [inst.id]
            packed[-1] = Conversation(inst.id, inst.system, inst.functions, tuple(turns), {**inst.meta, "merged_ids": merged})
        else:
            packed.append(inst)
    return packed


def convert_answer(answer: AnswerFile, format: str = "packed", keep_thoughts: bool = True) -> list[Conversation]:
    """The training conversations of one answer file (none when ``valid_data`` is false)."""
    if format not in FORMATS:
        raise ValueError(f"format: unknown {format!r}; choose one of {', '.join(FORMATS)}")
    if not answer.valid_data:
        return []
    steps = [step_conversation(answer, i, keep_thoughts) for i in range(len(answer.train_messages))]
    instances = [s for s in steps if s is not None]
    return pack(instances) if format == "packed" else instances


def convert_answers(answers: list[AnswerFile], format: str = "packed", keep_thoughts: bool = True) -> list[Conversation]:
    return [conv for answer in answers for conv in convert_answer(answer, format, keep_thoughts)]


def to_sft_instance(conv: Conversation) -> SftInstance:
    """A conversation as ToolBench's SFT JSON (``from``/``value`` turns)."""
    turns = [SftTurn("system", system_text(conv.system, conv.functions))]
    for turn in conv.turns:
        value = step_text(turn.step) if turn.step is not None else turn.text
        turns.append(SftTurn(turn.role, value))
    return SftInstance(id=conv.id, conversations=tuple(turns))


def to_sft_instances(convs: list[Conversation]) -> list[SftInstance]:
    return [to_sft_instance(c) for c in convs]
