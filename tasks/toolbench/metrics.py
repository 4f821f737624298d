"""Held-out metrics of a model's next step: pure functions, one score per step, then shares.

A case is a point inside a reference trajectory: the conversation so far (rendered as the
model will see it), the reference step, the functions offered. The model's generated text is
judged on its own (does it parse, is the action offered, are the arguments a JSON object with
the function's required keys) and against the reference (the right action; ``Finish`` exactly
where the reference finishes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from tasks.toolbench.conversation import Conversation, Step
from tasks.toolbench.render import Demonstration, ParseError, Template, ToolLlamaTemplate, parse_step

FINISH = "Finish"


@dataclass(frozen=True)
class HeldoutCase:
    id: str
    turn: int  # index of the reference step in the conversation's turns
    context: Demonstration  # the conversation before the step, as training renders it
    prompt: str  # what the model continues at inference (same text + the generation prefix)
    reference: Step
    functions: tuple[dict[str, Any], ...]


def heldout_cases(conversations: Iterable[Conversation], template: Template | None = None) -> list[HeldoutCase]:
    """One case per trained step of each conversation (use the packed format: each step once)."""
    template = template or ToolLlamaTemplate()
    cases = []
    for conv in conversations:
        for i in conv.trained_steps:
            before = conv.with_turns(conv.turns[:i])
            cases.append(HeldoutCase(conv.id, i, template.demonstration(before), template.prompt(before),
                                     conv.turns[i].step, conv.functions))
    return cases


@dataclass(frozen=True)
class StepScore:
    parses: bool
    action_offered: bool
    action_right: bool
    arguments_json: bool
    arguments_required: bool
    finish_right: bool
    error: str = ""  # the parse error's kind, if any


def _required(functions: tuple[dict[str, Any], ...] | list[dict[str, Any]], name: str) -> list[str] | None:
    for function in functions:
        if function.get("name") == name:
            return list(function.get("parameters", {}).get("required", []))
    return None


def score_step(
    generated: str,
    reference: Step,
    functions: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    parse: Callable[[str], Step | ParseError] = parse_step,
) -> StepScore:
    """Judge one generated step (the text the model wrote after the prompt)."""
    parsed = parse(generated)
    if isinstance(parsed, ParseError):
        return StepScore(False, False, False, False, False, False, parsed.kind)
    required = _required(functions, parsed.action)
    try:
        arguments = json.loads(parsed.action_input)
    except json.JSONDecodeError:
        arguments = None
    is_object = isinstance(arguments, dict)
    return StepScore(
        parses=True,
        action_offered=required is not None,
        action_right=parsed.action == reference.action,
        arguments_json=is_object,
        arguments_required=is_object and required is not None and all(k in arguments for k in required),
        finish_right=(parsed.action == FINISH) == (reference.action == FINISH),
    )


def aggregate(scores: list[StepScore], prefix: str = "eval/") -> dict[str, float]:
    """Share of steps with each property (``eval/parses``, ``eval/action_right``, ...)."""
    if not scores:
        return {}
    out = {f"{prefix}{f.name}": sum(bool(getattr(s, f.name)) for s in scores) / len(scores)
           for f in fields(StepScore) if f.name != "error"}
    out[f"{prefix}steps"] = float(len(scores))
    return out
