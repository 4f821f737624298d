"""DFSDT: ToolBench's depth-first search-based decision tree (``DFS_woFilter_w2``).

The search as ToolBench runs it (OpenBMB/ToolBench @d56fdd8,
``toolbench/inference/Algorithms/DFS.py`` with ``with_filter=False``), as a generator:

* pre-order: at a node, for each of ``width`` children: one LLM call, the step's nodes (and
  its API call), then the search goes down that child at once;
* a child after the first is generated with a *diversity prompt*: a user message listing
  the first action (name, arguments, output) under each earlier child. It is part of that
  one call's context only, never of the nodes below;
* ``Finish(give_answer)`` ends the whole search: the first answer wins;
* ``Finish(give_up_and_restart)`` prunes the node, keeps it as a give-up candidate and goes
  back two levels: the node the model gave up from is abandoned and its parent tries its
  next child;
* a node at ``max_depth`` that is not an answer, or a step the parser rejected, is pruned
  and its parent tries the next child; tool errors prune nothing;
* the budget counts LLM calls; reaching it ends the search;
* with no answer, one give-up node is picked as the result, by a generator seeded from the
  run's seed and the query (ToolBench uses the unseeded ``random`` module).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.inference.prompts import DIVERSITY_PROMPT
from tasks.toolbench.inference.search import Search, SearchState
from tasks.toolbench.inference.tree import ACTION_INPUT, Message, Node, chain_json, train_messages, tree_json

# How many levels a result sends the search back (ToolBench's final_answer_back_length and
# prune_back_length); a budget stop sends it back past the root.
ANSWER_BACK = 2
GIVE_UP_BACK = 2
STOP_BACK = 100_000


@dataclass
class DFSDT:
    state: SearchState
    seed: int = 0
    root: Node | None = None
    terminal: list[Node] = field(default_factory=list)
    give_ups: list[Node] = field(default_factory=list)
    expand_counter: int = 0

    def run(self) -> Search:
        self.root = self.state.new_root()
        yield from self._dfs(self.root)

    def _dfs(self, node: Node):
        node.expand_num = self.expand_counter
        self.expand_counter += 1
        if self.state.too_deep(node) or node.pruned or node.is_terminal:
            if node.is_terminal:
                self.terminal.append(node)
                return ANSWER_BACK
            node.pruned = True
            if node.observation_code == 4:
                self.give_ups.append(node)
                return GIVE_UP_BACK
            return 1
        for _ in range(self.state.config.width):
            diversity = diversity_message(node)
            context = [*node.messages, diversity] if diversity is not None else list(node.messages)
            reply = yield from self.state.ask(context)
            if reply is None:  # budget reached
                return STOP_BACK
            child = yield from self.state.apply_step(node, context, reply)
            back = yield from self._dfs(child)
            if len(self.terminal) >= self.state.config.answers:
                return 10_000
            if back > 1:
                return back - 1
        return 1

    def to_json(self) -> dict[str, Any]:
        """The answer file ToolBench writes for DFSDT (``DFS_tree_search.to_json``)."""
        assert self.root is not None, "run the search first"
        cfg = self.state.config
        answer: dict[str, Any] = {
            "valid_data": False,
            "query_count": self.state.query_count,
            "total_tokens": self.state.prompt_tokens + self.state.completion_tokens,
            "final_answer": "",
            "finish_type": "give_answer",
            "function": self.state.env.functions,
            "chain": [],
        }
        answered = [n for n in self.terminal if not n.pruned]
        if answered:
            answer.update(valid_data=True, finish_type="give_answer", final_answer=answered[0].description,
                          train_messages=train_messages(answered[0]))
        elif self.give_ups:
            rng = random.Random(f"{self.seed}:{self.state.env.query_id}:give_up")
            chosen = self.give_ups[rng.randrange(len(self.give_ups))]
            answer.update(valid_data=True, finish_type="give_up", final_answer=chosen.description,
                          train_messages=train_messages(chosen))
        answer["query"] = self.state.env.query
        return {
            "win": bool(answered),
            "tree": tree_json(self.root),
            "forward_args": {"single_chain_max_step": cfg.max_depth, "tree_beam_size": cfg.width,
                             "max_query_count": cfg.max_query_count, "answer": cfg.answers, "with_filter": False},
            "compare_candidates": [chain_json(n) for n in answered],
            "answer_generation": answer,
        }


def diversity_message(node: Node) -> Message | None:
    """The user message that shows the model what it already tried from ``node``: for each
    child, the first Action Input below it (ToolBench walks first children down)."""
    candidates = []
    for child in node.children:
        below = child
        while not below.is_terminal and below.node_type != ACTION_INPUT and below.children:
            below = below.children[0]
        if below.node_type == ACTION_INPUT and below.parent is not None:
            candidates.append({"name": below.parent.description, "arguments": below.description,
                               "function_output": below.observation, "mento-carlo-action-value": 0.0})
    if not candidates:
        return None
    listed = f"{json.dumps(candidates, indent=2)}\n"
    if node.observation != "":
        listed += f"again, your former observation: {node.observation}\n"
    return {"role": "user", "content": DIVERSITY_PROMPT.replace("{previous_candidate}", listed)}
