"""The conversation record every ToolBench piece shares: training, rendering, inference.

A conversation is the system message, the functions offered, and the turns after it: user
text (the query, and DFSDT's diversity prompts), assistant steps (thought + one function
call) and function observations. ``trained`` marks the assistant steps the loss covers: in
ToolBench's own format only the last one; in the packed format every one.

The raw system message is kept apart from the functions because templates place them
differently: ``toolllama`` appends ``str(functions)`` to the system text (ToolBench's
``process_system_message``), a chat template receives them as ``tools``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Role = Literal["user", "assistant", "function"]


@dataclass(frozen=True)
class Step:
    """One assistant step: the thought, then one function call (``action_input`` is the JSON
    text as written, never re-serialised: a model's byte-exact output stays byte-exact)."""

    thought: str
    action: str
    action_input: str


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str = ""  # user / function text
    step: Step | None = None  # assistant turns
    trained: bool = False
    name: str | None = None  # function turns: the function that answered

    @staticmethod
    def user(text: str) -> Turn:
        return Turn("user", text)

    @staticmethod
    def assistant(step: Step, trained: bool = False) -> Turn:
        return Turn("assistant", step=step, trained=trained)

    @staticmethod
    def function(text: str, name: str | None = None) -> Turn:
        return Turn("function", text, name=name)

    def untrained(self) -> Turn:
        return replace(self, trained=False) if self.trained else self


@dataclass(frozen=True)
class Conversation:
    id: str
    system: str
    functions: tuple[dict[str, Any], ...]
    turns: tuple[Turn, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def steps(self) -> list[Step]:
        return [t.step for t in self.turns if t.step is not None]

    @property
    def trained_steps(self) -> list[int]:
        """Indices (in ``turns``) of the trained assistant turns."""
        return [i for i, t in enumerate(self.turns) if t.trained]

    def function_names(self) -> list[str]:
        return [f["name"] for f in self.functions]

    def with_turns(self, turns: tuple[Turn, ...] | list[Turn]) -> Conversation:
        return replace(self, turns=tuple(turns))
