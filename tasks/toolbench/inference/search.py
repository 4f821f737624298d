"""What DFSDT and ReAct share: the search's settings, the requests a search yields, and one
model step turned into tree nodes.

A search is a Python generator: it yields an :class:`LLMCall` or an :class:`APICall` and is
sent back the reply. It never calls a model or an API itself, so a driver can run hundreds
of searches side by side and batch their model calls (the expensive part) across queries,
while each search still reads top to bottom like ToolBench's recursive code.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.conversation import Step
from tasks.toolbench.inference.env import APIResult, QueryEnv
from tasks.toolbench.inference.prompts import initial_messages
from tasks.toolbench.inference.tree import ACTION, ACTION_INPUT, THOUGHT, Message, Node
from tasks.toolbench.render import ParseError

# Status codes of ToolBench's environment that the search acts on.
CODE_NO_SUCH_FUNCTION = 1
CODE_FINAL_ANSWER = 3
CODE_GIVE_UP = 4
# Our code for a model step the parser rejected (ToolBench's ChatGPT wrapper uses -1 for a
# reply it could not read).
CODE_PARSE_ERROR = -1


@dataclass
class SearchConfig:
    """How one query is searched (``conf/infer``)."""

    # "dfsdt" (ToolBench's DFS_woFilter) or "react" (CoT@n).
    method: str = "dfsdt"
    # Children tried per node (DFSDT); ToolBench's tree_beam_size.
    width: int = 2
    # Deepest node kept: a node at this depth that is not an answer is pruned.
    max_depth: int = 12
    # "nodes": depth in tree nodes as ToolBench (Thought, Action, Action Input each count;
    # 12 = four steps with thoughts). "steps": depth in model steps.
    depth_unit: str = "nodes"
    # Budget in LLM calls per query; the call that reaches it is not used (ToolBench).
    max_query_count: int = 200
    # ReAct: chains tried before giving up (CoT@n).
    pass_at: int = 1
    # Answers that end the search (ToolBench's ``answer``).
    answers: int = 1

    def __post_init__(self) -> None:
        if self.method not in ("dfsdt", "react"):
            raise ValueError(f"search method must be 'dfsdt' or 'react', got {self.method!r}")
        if self.depth_unit not in ("nodes", "steps"):
            raise ValueError(f"depth_unit must be 'nodes' or 'steps', got {self.depth_unit!r}")
        for name in ("width", "max_depth", "max_query_count", "pass_at", "answers"):
            if getattr(self, name) < 1:
                raise ValueError(f"search.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def method_name(self) -> str:
        """ToolBench's name of the method, used in output file names."""
        return f"DFS_woFilter_w{self.width}" if self.method == "dfsdt" else f"CoT@{self.pass_at}"


# Reads a model's text as one step (the policy's template's parser, render.parse_step for
# toolllama): a Step, or a ParseError the search handles (never a guessed action).
Parser = Callable[[str], "Step | ParseError"]


@dataclass(frozen=True)
class LLMCall:
    """Asks the policy for the next step; ``index`` counts this query's calls from 0."""

    query_id: str
    index: int
    messages: list[Message]
    functions: list[dict[str, Any]]


@dataclass(frozen=True)
class LLMReply:
    """The model's text for one call. ``step`` is set by policies that get the step already
    structured (an endpoint's native tool calls); otherwise the search parses ``text``."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    step: "Step | ParseError | None" = None


@dataclass(frozen=True)
class APICall:
    """Asks the virtual API server for one call (a StableToolBench request body)."""

    query_id: str
    request: dict[str, Any]


Search = Generator["LLMCall | APICall", Any, None]


@dataclass
class SearchState:
    """Counters and outcomes of one query's search, shared by both methods."""

    env: QueryEnv
    config: SearchConfig
    parse: Parser
    query_count: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    api_calls: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    budget_exhausted: bool = False
    parse_errors: int = 0

    def new_root(self) -> Node:
        root = Node(ACTION_INPUT)
        root.messages = initial_messages(self.env.task_description, self.env.query)
        return root

    def too_deep(self, node: Node) -> bool:
        depth = node.depth if self.config.depth_unit == "nodes" else node.steps
        return depth >= self.config.max_depth

    def ask(self, context: list[Message]) -> Generator[LLMCall, LLMReply, LLMReply | None]:
        """One LLM call, or None when it would reach the budget.

        ToolBench makes the call that reaches ``max_query_count`` and throws its reply away;
        we count it the same way but do not make it (the tree is the same either way)."""
        self.query_count += 1
        if self.query_count >= self.config.max_query_count:
            self.budget_exhausted = True
            return None
        reply = yield LLMCall(self.env.query_id, self.llm_calls, context, self.env.functions)
        self.llm_calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        return reply

    def apply_step(self, node: Node, context: list[Message], reply: LLMReply) -> Generator[APICall, Any, Node]:
        """Turn one reply into Thought / Action / Action Input nodes under ``node``, calling
        the API, and return the step's last node (ToolBench's DFS body, one step)."""
        steps = node.steps + 1
        parsed = reply.step if reply.step is not None else self.parse(reply.text)
        if isinstance(parsed, ParseError):
            self.parse_errors += 1
            message = {"role": "assistant", "content": reply.text}
            bad = node.add_child(Node(THOUGHT, reply.text, observation=f"parse error ({parsed.kind}): {parsed.reason}",
                                      observation_code=CODE_PARSE_ERROR, pruned=True, steps=steps))
            bad.messages = [*node.messages, message]
            bad.step_context, bad.step_message = context, message
            return bad
        call = {"name": parsed.action, "arguments": parsed.action_input}
        message: Message = {"role": "assistant", "content": parsed.thought, "function_call": call}
        current = node.add_child(Node(THOUGHT, parsed.thought, messages=list(node.messages), steps=steps))
        current = current.add_child(Node(ACTION, parsed.action, messages=list(node.messages), steps=steps))
        leaf = current.add_child(Node(ACTION_INPUT, parsed.action_input, steps=steps))
        result: APIResult = yield from self.env.step(parsed.action, parsed.action_input)
        if result.source is not None:
            self.api_calls += 1
            self.sources[result.source] = self.sources.get(result.source, 0) + 1
        leaf.observation, leaf.observation_code = result.observation, result.code
        if result.code == CODE_GIVE_UP:
            leaf.pruned = True
        elif result.code == CODE_NO_SUCH_FUNCTION:
            # ToolBench renames a hallucinated function in the history the model sees next.
            call = {**call, "name": "invalid_hallucination_function_name"}
            message = {**message, "function_call": call}
        elif result.code == CODE_FINAL_ANSWER:
            leaf.is_terminal = True
            leaf.make_finish(2)
        leaf.messages = [*node.messages, message,
                         {"role": "function", "name": call["name"], "content": result.observation}]
        leaf.step_context, leaf.step_message = context, message
        return leaf

    def stats(self) -> dict[str, Any]:
        return {
            "query_count": self.query_count,
            "llm_calls": self.llm_calls,
            "api_calls": self.api_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "parse_errors": self.parse_errors,
            "budget_exhausted": self.budget_exhausted,
            "sources": dict(sorted(self.sources.items())),
        }

