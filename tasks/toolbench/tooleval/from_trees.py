"""Raw DFSDT / CoT answer files -> ToolEval's converted answers (``convert_to_answer_format.py``).

The answer files are read by :mod:`tasks.toolbench.formats`; this module only rearranges
them as ToolEval's converter does:

- a valid answer (``valid_data``) is the chosen path, ``train_messages[-1]``: each assistant
  function call becomes a ``tool`` node ``{name, arguments, response}`` (the next message's
  text; empty for Finish), other assistant messages ``assistant`` nodes, behind a system and
  a user node whose messages the converter blanks;
- an invalid one (no answer found) is one path through the search tree: Action nodes merged
  with their Action Input (arguments, observation), Thoughts as ``assistant`` nodes. Upstream
  walks it with the unseeded global ``random.choice`` at each branch; we draw each branch
  from a generator seeded by the query (:mod:`.draws`) and count the draws;
- ``total_steps`` counts the chain's nodes, system and user included.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import AnswerFile, Query, TreeNode, find_answer_files, read_answer_file
from tasks.toolbench.names import function_name, standardize
from tasks.toolbench.tooleval.converted import answer_from_entry
from tasks.toolbench.tooleval.draws import draw
from tasks.toolbench.tooleval.records import FINISH, EvalAnswer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Converted:
    """One answer file in ToolEval's converted form, and how many branches chance picked."""

    entry: dict[str, Any]
    walk_draws: int


def _chain(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[system, user, *nodes]`` as ToolEval's nested ``{role, message, next}`` list."""
    head: list[dict[str, Any]] = []
    for node in reversed([{"role": "system", "message": ""}, {"role": "user", "message": ""}, *nodes]):
        head = [{"role": node["role"], "message": node["message"], "next": head}]
    return head


def _valid_nodes(answer: AnswerFile) -> list[dict[str, Any]]:
    messages = answer.train_messages[-1]
    nodes = []
    index = 2
    while index < len(messages):
        message = messages[index]
        if message.role == "assistant" and message.function_call is not None:
            call = message.function_call
            response = ""
            if call.name != FINISH and index + 1 < len(messages):
                response = messages[index + 1].content or ""
            nodes.append({"role": "tool", "message": {"name": call.name, "arguments": call.arguments,
                                                      "response": response}})
            index += 1
        elif message.role == "assistant":
            nodes.append({"role": "assistant", "message": message.content or ""})
        index += 1
    return nodes


def _tree_nodes(root: TreeNode, seed: int, where: str) -> tuple[list[dict[str, Any]], int]:
    rng = draw(seed, "walk", where)
    nodes: list[dict[str, Any]] = []
    options = list(root.children)
    draws = 0
    while options:
        if len(options) > 1:
            draws += 1
        node = options[0] if len(options) == 1 else rng.choice(options)
        if node.node_type == "Action":
            inputs = [c for c in node.children if c.node_type == "Action Input"]
            if inputs:
                given = inputs[0]
                nodes.append({"role": "tool", "message": {"name": node.description, "arguments": given.description,
                                                          "response": given.observation or ""}})
                options = [c for c in node.children if c is not given] + list(given.children)
                continue
            nodes.append({"role": "Action", "message": {"description": node.description}})
        elif node.node_type == "Thought":
            nodes.append({"role": "assistant", "message": node.description})
        else:  # a stray Action Input: ToolEval keeps it under its own role
            nodes.append({"role": node.node_type, "message": {"description": node.description,
                                                              "observation": node.observation}})
        options = list(node.children)
    return nodes, draws


def convert_answer(answer: AnswerFile, method: str = "DFS_woFilter_w2", seed: int = 0) -> Converted:
    """One answer file as a converted entry ``{query, available_tools, answer}``."""
    draws = 0
    if answer.valid_data and answer.train_messages:
        nodes = _valid_nodes(answer)
    elif answer.tree is not None:
        # the draw is named by the group folder and file name, not the absolute path: the same
        # seed walks the same branches on every machine, wherever the answers lie
        path = Path(answer.file)
        nodes, draws = _tree_nodes(answer.tree, seed, f"{path.parent.name}/{path.name}")
    else:
        nodes = []
    chain = _chain(nodes)
    entry = {
        "query": answer.query,
        "available_tools": [dict(f) for f in answer.functions],
        "answer": {"method": method, "total_steps": len(nodes) + 2, "final_answer": answer.final_answer,
                   "answer_details": chain},
    }
    return Converted(entry=entry, walk_draws=draws)


def relevant_function_names(query: Query) -> tuple[str, ...]:
    """A query's relevant APIs as the function names a model calls (``api_for_tool``)."""
    return tuple(function_name(api, standardize(tool)) for tool, api in query.relevant_apis)


def group_of(path: Path) -> str:
    """``.../G1_answer/10_...json`` -> ``G1``; ``.../G1_instruction/10_...json`` -> ``G1_instruction``."""
    folder = path.parent.name
    return folder[: -len("_answer")] if folder.endswith("_answer") else folder


def read_answer_trees(root: str | os.PathLike[str], *, model: str, method: str = "DFS_woFilter_w2",
                      seed: int = 0, queries: dict[str, Query] | None = None) -> list[EvalAnswer]:
    """Every answer file under ``root`` as :class:`EvalAnswer`, groups from the folder names;
    ``queries`` (by id) supply relevant APIs where the answer's query is among them (matched
    by id and text, since ids repeat across groups)."""
    answers = []
    total_draws = 0
    for path in find_answer_files(root, method):
        raw = read_answer_file(path)
        converted = convert_answer(raw, method=method, seed=seed)
        total_draws += converted.walk_draws
        query = (queries or {}).get(raw.query_id)
        relevant = None
        if query is not None and query.query.strip() == raw.query.strip() and query.relevant_apis:
            relevant = relevant_function_names(query)
        answers.append(answer_from_entry(raw.query_id, converted.entry, group=group_of(path), model=model,
                                         relevant_apis=relevant, where=str(path)))
    logger.info("%d answers from %s (%d seeded branch draws on invalid trees)", len(answers), root, total_draws)
    return answers
