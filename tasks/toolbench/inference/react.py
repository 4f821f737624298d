"""ReAct as ToolBench runs it: ``CoT@n``, one chain of steps restarted up to n times.

Follows OpenBMB/ToolBench @d56fdd8 ``toolbench/inference/Algorithms/single_chain.py``: a
chain goes step by step until its last node is an answer or pruned (give-up, a step the
parser rejected, or ``max_depth`` reached without an answer); each failed chain starts
afresh from the query, and the first chain that answers ends the search. Unlike ToolBench,
the LLM-call budget of :class:`SearchConfig` applies here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.inference.search import Search, SearchState
from tasks.toolbench.inference.tree import Node, chain_json, train_messages


@dataclass
class ReAct:
    state: SearchState
    seed: int = 0
    ends: list[Node] = field(default_factory=list)
    tries: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> Search:
        for _ in range(self.state.config.pass_at):
            end = yield from self._chain(self.state.new_root())
            if end is not None:
                self.ends.append(end)
                self.tries.append({"chain": chain_json(end), "win": end.is_terminal})
            answered = sum(1 for n in self.ends if n.is_terminal)
            if end is None or self.state.budget_exhausted or answered >= self.state.config.answers:
                break

    def _chain(self, node: Node):
        while True:
            context = list(node.messages)
            reply = yield from self.state.ask(context)
            if reply is None:  # budget reached: the chain so far is kept as a failed try
                if node.parent is None:
                    return None
                node.pruned = True
                return node
            node = yield from self.state.apply_step(node, context, reply)
            if self.state.too_deep(node) and not node.is_terminal:
                node.pruned = True
            if node.pruned or node.is_terminal:
                return node

    def to_json(self) -> dict[str, Any]:
        """The answer file ToolBench writes for CoT@n (``single_chain.to_json``)."""
        cfg = self.state.config
        answer: dict[str, Any] = {
            "valid_data": False,
            "final_answer": "",
            "function": self.state.env.functions,
            "query_count": self.state.query_count,
            "total_tokens": self.state.prompt_tokens + self.state.completion_tokens,
            "train_messages": [],
            "chain": [],
        }
        answered = [n for n in self.ends if n.is_terminal and not n.pruned]
        if answered:
            answer.update(valid_data=True, final_answer=answered[0].description,
                          train_messages=train_messages(answered[0]))
        answer["query"] = self.state.env.query
        return {
            "win": bool(answered),
            "try_count": len(self.tries),
            "trys": self.tries,
            "compare_candidates": [chain_json(n) for n in answered],
            "forward_args": {"single_chain_max_step": cfg.max_depth, "pass_at": cfg.pass_at, "answer": cfg.answers},
            "answer_generation": answer,
        }
