"""Judges for ToolEval: ``openai`` (any OpenAI-compatible endpoint), ``replay``, ``rules``, ``scripted``."""

from __future__ import annotations

from typing import Any

from tasks.toolbench.tooleval.judges.base import STEPS, Judge, JudgeError, Verdict, verdict_key
from tasks.toolbench.tooleval.judges.cache import JudgeCost, RequestCache, canonical_json, request_key
from tasks.toolbench.tooleval.judges.openai_judge import OpenAIJudge, OpenAIJudgeConfig
from tasks.toolbench.tooleval.judges.replay import RecordingJudge, ReplayJudge
from tasks.toolbench.tooleval.judges.rules import RulesJudge
from tasks.toolbench.tooleval.judges.scripted import ScriptedJudge

KINDS = ("rules", "openai", "replay")


def build_judge(kind: str, **options: Any) -> Judge:
    """``rules``; ``openai`` with :class:`OpenAIJudgeConfig`'s fields (``base_url`` required);
    ``replay`` with ``path``. (``scripted`` is built directly, by tests.)"""
    if kind == "rules":
        if options:
            raise ValueError(f"the rules judge takes no options, got {sorted(options)}")
        return RulesJudge()
    if kind == "openai":
        if not options.get("base_url"):
            raise ValueError("the openai judge needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIJudge(OpenAIJudgeConfig(**options))
    if kind == "replay":
        if not options.get("path"):
            raise ValueError("the replay judge needs path (a verdicts.jsonl file)")
        return ReplayJudge(options["path"])
    raise ValueError(f"unknown judge {kind!r}; known: {', '.join(KINDS)}")


__all__ = ["KINDS", "STEPS", "Judge", "JudgeCost", "JudgeError", "OpenAIJudge", "OpenAIJudgeConfig",
           "RecordingJudge", "ReplayJudge", "RequestCache", "RulesJudge", "ScriptedJudge", "Verdict",
           "build_judge", "canonical_json", "request_key", "verdict_key"]
