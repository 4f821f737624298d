"""ToolBench's SFT file read back into answer files, so ``data=full`` also works from
``toolllama_G123_dfs_train.json`` alone (the file most users download).

Consecutive instances of one query become one answer file whose ``train_messages`` are the
instances' conversations: the system value is split back into the DFSDT system message and
the functions (``str(functions)`` is a Python literal), each assistant value is parsed as a
step. Converting the result with ``format=toolbench`` gives the file's instances again, byte
for byte; ``format=packed`` merges them. Thoughts ToolBench dropped stay dropped.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from tasks.toolbench.formats import AnswerFile, FormatError, FunctionCall, Message, SftInstance, read_sft_file
from tasks.toolbench.render import ParseError, parse_step
from tasks.toolbench.toolllama import CALL_PHRASE, FORMAT_NOTE, FUNCTIONS_INTRO

_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "function": "function", "human": "user", "gpt": "assistant"}


def _split_system(value: str, where: str) -> tuple[str, tuple[dict, ...]]:
    head, sep, tail = value.rpartition(FUNCTIONS_INTRO)
    if not sep:
        raise FormatError(where, "", "the system text does not end with the function list")
    try:
        functions = ast.literal_eval(tail)
    except (ValueError, SyntaxError) as err:
        raise FormatError(where, "", f"the function list is not a Python literal ({err})") from None
    if not isinstance(functions, list) or not all(isinstance(f, dict) and "name" in f for f in functions):
        raise FormatError(where, "", "the function list is not a list of function schemas")
    return head.replace(FORMAT_NOTE, CALL_PHRASE), tuple(functions)


def _messages(inst: SftInstance, file: str, index: int) -> tuple[tuple[Message, ...], tuple[dict, ...]]:
    functions: tuple[dict, ...] = ()
    messages = []
    for j, turn in enumerate(inst.conversations):
        where = f"[{index}].conversations[{j}]"
        role = _ROLES[turn.role]
        if role == "system":
            system, functions = _split_system(turn.value, f"{file}: {where}.value")
            messages.append(Message("system", system))
        elif role == "assistant":
            step = parse_step(turn.value)
            if isinstance(step, ParseError):
                raise FormatError(file, f"{where}.value", f"not a ToolBench step: {step.reason}")
            # A thought that survived ToolBench's converter came from a message without a call
            # before the call (the call's own text was dropped): rebuild it that way.
            if step.thought:
                messages.append(Message("assistant", step.thought))
            messages.append(Message("assistant", None, FunctionCall(step.action, step.action_input)))
        else:
            messages.append(Message(role, turn.value))
    if not messages or messages[0].role != "system" or messages[-1].role != "assistant":
        raise FormatError(file, f"[{index}].conversations", "an instance must start with the system turn and end with an assistant turn")
    return tuple(messages), functions


def _query(inst: SftInstance) -> str:
    head, sep, query = inst.id.partition(": ")
    return query if sep and head.startswith("Step ") else inst.id


def answers_from_sft(instances: list[SftInstance], file: str) -> list[AnswerFile]:
    groups: list[list[tuple[int, SftInstance]]] = []
    for index, inst in enumerate(instances):
        if groups and _query(groups[-1][-1][1]) == _query(inst):
            groups[-1].append((index, inst))
        else:
            groups.append([(index, inst)])
    answers = []
    for group in groups:
        parsed = [_messages(inst, file, index) for index, inst in group]
        last_call = parsed[-1][0][-1].function_call
        give_up = last_call.name == "Finish" and "give_up_and_restart" in last_call.arguments
        answers.append(AnswerFile(
            file=f"{file}#{group[0][0]}",
            query=_query(group[0][1]),
            valid_data=True,
            finish_type="give_up" if give_up else "give_answer",
            final_answer=last_call.arguments if last_call.name == "Finish" else "",
            query_count=len(group),
            total_tokens=None,
            functions=parsed[0][1],
            train_messages=tuple(messages for messages, _ in parsed),
            step_ids=tuple(inst.id for _, inst in group),
        ))
    return answers


def read_sft_as_answers(path: str | os.PathLike[str]) -> list[AnswerFile]:
    return answers_from_sft(read_sft_file(path), str(Path(path)))
