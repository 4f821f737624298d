"""The search tree of one query, and its export in ToolBench's answer format.

A node is one of ToolBench's three kinds: ``Thought`` (the model's reasoning), ``Action``
(the function name) and ``Action Input`` (the arguments, with the API's observation). One
model step makes a Thought, an Action and an Action Input node in a chain, so depth counts
tree nodes, as in ToolBench (``single_chain_max_step=12`` is four steps with thoughts).

Each node keeps the messages that led to it (OpenAI chat form); the last node of a step
keeps them with the step's assistant message and the function's answer appended, which is
the context of the next step. A diversity prompt never enters a node's messages: it lives
only in the context of the step it was shown in (``Node.step_context``).

The JSON written by :meth:`Node.to_json` and :func:`train_messages` follows ToolBench's
``Tree.py`` (OpenBMB/ToolBench @d56fdd8) field by field, so ToolBench's and StableToolBench's
converters and evaluators read our answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]

THOUGHT = "Thought"
ACTION = "Action"
ACTION_INPUT = "Action Input"


@dataclass(eq=False)
class Node:
    node_type: str
    description: str = ""
    parent: "Node | None" = None
    observation: str = ""
    observation_code: int | None = None
    pruned: bool = False
    is_terminal: bool = False
    finished: bool = False
    # Order in which the search visited the node (ToolBench's ``expand_num``).
    expand_num: int = 0
    children: list["Node"] = field(default_factory=list)
    # Context before this node's step, plus (on a step's last node) the step and its result.
    messages: list[Message] = field(default_factory=list)
    # On the last node of a step: the exact context that step was generated from (diversity
    # prompt included) and the assistant message it produced, for train_messages.
    step_context: list[Message] | None = None
    step_message: Message | None = None
    # Model steps on the path from the root to this node (for depth counted in steps).
    steps: int = 0

    @property
    def depth(self) -> int:
        depth, node = 0, self
        while node.parent is not None:
            depth, node = depth + 1, node.parent
        return depth

    def add_child(self, child: "Node") -> "Node":
        child.parent = self
        self.children.append(child)
        return child

    def path(self) -> list["Node"]:
        """Nodes from the root's first child down to this node."""
        nodes, node = [], self
        while node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def make_finish(self, inter_val: int = 1) -> None:
        """Mark this node and its ancestors finished, up to ``inter_val`` Action Input
        nodes above it (ToolBench's ``make_finish``, kept for identical trees)."""
        node: Node | None = self
        while node is not None:
            node.finished = True
            if node.node_type == ACTION_INPUT:
                inter_val -= 1
            if inter_val < 0:
                break
            node = node.parent

    def size(self) -> int:
        return 1 + sum(c.size() for c in self.children)

    def max_length(self) -> int:
        return 1 + max((c.max_length() for c in self.children), default=0)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            # ToolBench writes False here for every node; its readers look at pruned/finished.
            "is_terminal": False,
            "pruned": self.pruned,
            "finished": self.finished,
            "depth": self.depth,
            "node_type": self.node_type,
            "description": self.description,
            "Elo": 1000.0,
        }
        if self.observation != "":
            obj["observation"] = self.observation
        if self.observation_code is not None:
            obj["observation_code"] = self.observation_code
        obj["child_count"] = len(self.children)
        obj["expand_num"] = self.expand_num
        if self.node_type == ACTION_INPUT:  # ToolBench's environment state, empty for RapidAPI
            obj["io_state"] = {}
        return obj

    def to_json_recursive(self) -> dict[str, Any]:
        obj = self.to_json()
        obj["children"] = [c.to_json_recursive() for c in self.children]
        return obj


def tree_json(root: Node) -> dict[str, Any]:
    return {"size": root.size(), "max_length": root.max_length(), "tree": root.to_json_recursive()}


def chain_json(node: Node) -> list[dict[str, Any]]:
    """The path to ``node`` as ToolBench's ``get_chain_result_from_this_node``."""
    return [n.to_json() for n in node.path()]


def train_messages(node: Node) -> list[list[Message]]:
    """One conversation per model step on the path to ``node``: the context the step was
    generated from, then its assistant message (ToolBench's ``train_messages``)."""
    return [[*n.step_context, n.step_message] for n in node.path()
            if n.step_context is not None and n.step_message is not None]
