"""Answer files (``answer/G*_answer/<query_id>_<model>_DFS_woFilter_w2.json``, also ``CoT@1``).

``answer_generation`` is what training uses: ``train_messages`` holds one OpenAI-style message
list per assistant step of the chosen path (the list ends with that step), ``function`` the
function schemas offered (the last one ``Finish``). ``tree`` is the DFSDT search tree itself
(nodes of type Thought / Action / Action Input, observations on Action Input nodes); it is
read for completeness and for the search helpers, training does not need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.formats.reading import At, load_json

MESSAGE_ROLES = ("system", "user", "assistant", "function")
FINISH_TYPES = ("give_answer", "give_up")


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str  # the JSON text the model wrote, unparsed


@dataclass(frozen=True)
class Message:
    role: str
    content: str | None
    function_call: FunctionCall | None = None
    # Function messages name the function that answered.
    name: str | None = None
    # DFSDT marks its diversity prompts (user messages inside the conversation) valid=False.
    valid: bool | None = None


@dataclass(frozen=True)
class TreeNode:
    node_type: str  # "Thought" | "Action" | "Action Input"
    description: str
    depth: int
    children: tuple[TreeNode, ...] = ()
    observation: str | None = None
    observation_code: int | None = None
    is_terminal: bool = False
    pruned: bool = False
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def walk(self) -> list[TreeNode]:
        """This node and all below it, depth first (iterative: trees can be deep)."""
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass(frozen=True)
class AnswerFile:
    file: str
    query: str
    valid_data: bool
    finish_type: str
    final_answer: str
    query_count: int
    total_tokens: int | None
    functions: tuple[dict[str, Any], ...]
    train_messages: tuple[tuple[Message, ...], ...]
    tree: TreeNode | None = None
    win: bool | None = None
    forward_args: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Instance ids per train_messages entry, when known from elsewhere (an SFT file read back).
    step_ids: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def query_id(self) -> str:
        """The id the file name starts with (``10_ChatGPT_DFS_woFilter_w2.json`` -> ``10``)."""
        return Path(self.file).name.split("_", 1)[0]


def read_message(at: At) -> Message:
    role_at = at.key("role", str)
    if role_at.value not in MESSAGE_ROLES:
        role_at.fail(f"unknown role {role_at.value!r} (known: {', '.join(MESSAGE_ROLES)})")
    call = None
    if at.has("function_call") and at.value["function_call"] is not None:
        call_at = at.key("function_call", dict)
        call = FunctionCall(name=call_at.get("name", str), arguments=call_at.get("arguments", str))
    content = at.get("content", str, type(None), default=None)
    if role_at.value == "assistant" and call is None and content is None:
        at.fail("an assistant message with neither content nor function_call")
    if role_at.value != "assistant" and content is None:
        at.key("content").fail(f"a {role_at.value} message without text")
    return Message(
        role=role_at.value,
        content=content,
        function_call=call,
        name=at.get("name", str, type(None), default=None),
        valid=at.get("valid", bool, type(None), default=None),
    )


def _read_node(at: At) -> TreeNode:
    at.expect(dict)
    known = {"node_type", "description", "depth", "children", "observation", "observation_code",
             "is_terminal", "pruned", "finished"}
    return TreeNode(
        node_type=at.get("node_type", str),
        description=at.get("description", str, type(None), default="") or "",
        depth=at.get("depth", int, default=0),
        children=tuple(_read_node(child) for child in at.key("children", list, default=[]).items()),
        observation=at.get("observation", str, type(None), default=None),
        observation_code=at.get("observation_code", int, type(None), default=None),
        is_terminal=at.get("is_terminal", bool, default=False),
        pruned=at.get("pruned", bool, default=False),
        finished=at.get("finished", bool, default=False),
        extra={k: v for k, v in at.value.items() if k not in known},
    )


def read_answer(root: At) -> AnswerFile:
    gen = root.key("answer_generation", dict)
    valid = gen.get("valid_data", bool)
    finish_at = gen.key("finish_type", str)
    if valid and finish_at.value not in FINISH_TYPES:
        finish_at.fail(f"unknown finish_type {finish_at.value!r} (known: {', '.join(FINISH_TYPES)})")
    messages_at = gen.key("train_messages", list, default=[])
    if valid and not messages_at.value:
        messages_at.fail("valid_data is true but there are no train_messages")
    train_messages = []
    for step_at in messages_at.items():
        step = tuple(read_message(m) for m in step_at.items())
        if not step or step[-1].role != "assistant":
            step_at.fail("must end with an assistant message (one list per assistant step)")
        train_messages.append(step)
    functions = []
    for fn_at in gen.key("function", list, default=[]).items():
        fn_at.key("name", str)
        functions.append(fn_at.value)
    tree = None
    if root.has("tree") and root.value["tree"] is not None:
        tree = _read_node(root.key("tree", dict).key("tree", dict))
    return AnswerFile(
        file=root.file,
        query=gen.get("query", str),
        valid_data=valid,
        finish_type=finish_at.value,
        final_answer=gen.get("final_answer", str, default=""),
        query_count=gen.get("query_count", int),
        total_tokens=gen.get("total_tokens", int, type(None), default=None),
        functions=tuple(functions),
        train_messages=tuple(train_messages),
        tree=tree,
        win=root.get("win", bool, type(None), default=None),
        forward_args=root.get("forward_args", dict, default={}),
    )


def read_answer_file(path: str | os.PathLike[str]) -> AnswerFile:
    return read_answer(load_json(path))


def find_answer_files(root: str | os.PathLike[str], method: str = "DFS_woFilter_w2") -> list[Path]:
    """Answer files under ``root`` (an ``answer/`` folder, one ``G*_answer`` folder, or a file)
    whose name holds ``method``, sorted by path so every run reads them in one order."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such answer file or folder")
    return sorted(p for p in root.rglob("*.json") if method in p.name)


def message_to_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.function_call is not None:
        out["function_call"] = {"name": message.function_call.name, "arguments": message.function_call.arguments}
    if message.name is not None:
        out["name"] = message.name
    if message.valid is not None:
        out["valid"] = message.valid
    return out


def answer_to_json(answer: AnswerFile) -> dict[str, Any]:
    """The ``answer_generation`` part of an answer file (what :func:`read_answer` reads back;
    the search tree, when there is none, is left out)."""
    generation = {
        "valid_data": answer.valid_data,
        "query_count": answer.query_count,
        "total_tokens": answer.total_tokens,
        "final_answer": answer.final_answer,
        "finish_type": answer.finish_type,
        "function": list(answer.functions),
        "chain": [],
        "train_messages": [[message_to_json(m) for m in step] for step in answer.train_messages],
        "query": answer.query,
    }
    return {"win": answer.win, "forward_args": answer.forward_args, "answer_generation": generation}
