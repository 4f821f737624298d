"""ToolBench's converted answer files: read them, write them, walk their chains.

A converted file (``model_predictions_converted/<model>/<test_set>.json``, what ToolBench's
and StableToolBench's ``eval_pass_rate.py`` read) maps a query id to ``{query,
available_tools, answer}``; ``answer.answer_details`` is a list of chains of ``{role,
message, next}`` nodes whose ``tool`` nodes carry ``{name, arguments, response}``. ToolEval
reads the first path through it (``utils.get_steps``: always ``next[0]``), and so do we.

Raw DFSDT answer trees are read by ``tasks.toolbench.formats``; :mod:`.from_trees` turns them
into this form.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

from tasks.toolbench.tooleval.records import ApiCall, EvalAnswer

logger = logging.getLogger(__name__)


class ConvertedFormatError(ValueError):
    """A converted answer file that does not have ToolEval's shape; names the file and path."""


def chain_calls(answer_details: Any, where: str = "answer_details") -> tuple[ApiCall, ...]:
    """The tool nodes on the first path of ``answer_details``, in order."""
    if not isinstance(answer_details, list):
        raise ConvertedFormatError(f"{where}: expected a list of nodes, got {type(answer_details).__name__}")
    calls: list[ApiCall] = []
    node: Any = answer_details[0] if answer_details else None
    path = f"{where}[0]"
    while node is not None:
        if not isinstance(node, dict) or "role" not in node:
            raise ConvertedFormatError(f"{path}: expected a node with 'role', 'message', 'next'")
        if node["role"] == "tool":
            message = node.get("message")
            if isinstance(message, str):  # ToolEval's hallucination check rewrites messages as str(dict)
                try:
                    message = ast.literal_eval(message)
                except (ValueError, SyntaxError):
                    pass
            if not isinstance(message, dict) or "name" not in message:
                raise ConvertedFormatError(f"{path}.message: expected {{name, arguments, response}}")
            response = message.get("response", "")
            calls.append(ApiCall(name=str(message["name"]),
                                 arguments=_as_text(message.get("arguments", "")),
                                 response=_as_text(response)))
        following = node.get("next") or []
        node = following[0] if following else None
        path += ".next[0]"
    return tuple(calls)


def _as_text(value: Any) -> str:
    """A field ToolBench stores as a string; StableToolBench's virtual server may give a dict."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def answer_from_entry(query_id: str, entry: Any, *, group: str, model: str,
                      relevant_apis: tuple[str, ...] | None = None, where: str = "") -> EvalAnswer:
    """One converted entry ``{query, available_tools, answer}`` as an :class:`EvalAnswer`."""
    where = where or f"[{query_id!r}]"
    if not isinstance(entry, dict):
        raise ConvertedFormatError(f"{where}: expected an object, got {type(entry).__name__}")
    for key in ("query", "available_tools", "answer"):
        if key not in entry:
            raise ConvertedFormatError(f"{where}: missing key {key!r}")
    answer = entry["answer"]
    if not isinstance(answer, dict) or "answer_details" not in answer or "final_answer" not in answer:
        raise ConvertedFormatError(f"{where}.answer: expected {{method, total_steps, final_answer, answer_details}}")
    query = entry["query"]
    if isinstance(query, list):  # a few ToolBench queries are stored as a one-element list
        query = query[0] if query else ""
    return EvalAnswer(query_id=str(query_id), group=group, model=model, query=str(query),
                      available_tools=list(entry["available_tools"]), answer=answer,
                      relevant_apis=relevant_apis,
                      calls=chain_calls(answer["answer_details"], f"{where}.answer.answer_details"))


def read_converted(path: str | Path, *, group: str | None = None, model: str | None = None,
                   relevant: dict[str, tuple[str, ...]] | None = None) -> dict[str, EvalAnswer]:
    """A converted file's answers by query id. ``group`` defaults to the file's stem
    (``G1_instruction.json``), ``model`` to its folder's name (ToolEval's layout)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConvertedFormatError(f"{path}: not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ConvertedFormatError(f"{path}: expected an object mapping query ids to answers")
    group = group or path.stem
    model = model or path.parent.name
    relevant = relevant or {}
    answers = {}
    for qid, entry in data.items():
        answers[str(qid)] = answer_from_entry(str(qid), entry, group=group, model=model,
                                              relevant_apis=relevant.get(str(qid)), where=f"{path}: [{qid!r}]")
    return answers


def write_converted(answers: list[EvalAnswer], path: str | Path) -> Path:
    """Write answers in the converted format, so ToolBench's own scripts can read them too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {a.query_id: {"query": a.query, "available_tools": a.available_tools, "answer": a.answer}
               for a in answers}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    return path
