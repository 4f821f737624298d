"""ToolBench's text format (template ``tool-llama-single-round``), piece by piece.

From OpenBMB/ToolBench @d56fdd8: ``toolbench/utils.py:process_system_message`` (the system
text: a format note, then ``str(functions)``), ``preprocess/preprocess_toolllama_data.py``
(an assistant step is ``\\nThought: …\\nAction: …\\nAction Input: …``),
``toolbench/tool_conversation.py`` (``Role: text`` lines joined by ``\\n``, the last message
ending with ``</s>``) and ``inference/Downstream_tasks/rapidapi.py`` (observations cut at
1,024 characters, then ``...``). The strings below are format, reproduced exactly.
"""

from __future__ import annotations

from typing import Any

from tasks.toolbench.conversation import Step

EOS = "</s>"
MAX_OBSERVATION = 1024
ROLE_LABELS = {"system": "System", "user": "User", "function": "Function", "assistant": "Assistant"}
THOUGHT, ACTION, ACTION_INPUT = "Thought: ", "Action: ", "Action Input: "

CALL_PHRASE = "with a function call to actually excute your step."
FORMAT_NOTE = CALL_PHRASE + " Your output should follow this format:\nThought:\nAction\nAction Input:\n"
FUNCTIONS_INTRO = "\nSpecifically, you have access to the following APIs: "


def system_text(system: str, functions: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    """ToolBench's ``process_system_message``: the format note after the call phrase (when the
    system message has it, as DFSDT's does), then the functions as ``str(list)``."""
    return system.replace(CALL_PHRASE, FORMAT_NOTE) + FUNCTIONS_INTRO + str(list(functions))


def step_text(step: Step) -> str:
    """The assistant text of one step, exactly as ToolBench's converter writes it."""
    return f"\n{THOUGHT}{step.thought}\n{ACTION}{step.action}\n{ACTION_INPUT}{step.action_input}"


def cut_observation(text: str, limit: int | None = MAX_OBSERVATION) -> str:
    """ToolBench's cut: the first ``limit`` characters, then ``...``. Idempotent on text it
    already cut (the answer files' observations are at most 1,027 characters)."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + "..."
