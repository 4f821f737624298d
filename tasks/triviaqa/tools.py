"""The search tasks' one tool: BM25 over a passage index (orchestrator/tools/search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def search_tool(name: str, index_dir: Path, corpus: Path | None, top_k: int, max_chars: int) -> dict[str, Any]:
    """A WikiSearch config; its actor builds the index from ``corpus`` when it is missing."""
    return {"_target_": "orchestrator.tools.search.WikiSearch", "name": name, "index_dir": str(index_dir),
            "corpus": None if corpus is None else str(corpus), "top_k": top_k, "max_chars": max_chars}


def search_in_process(tool_cfg: dict[str, Any], queries: list[str]) -> list[str]:
    """The tool's answers without an actor (what the actor would say, errors included): the
    demonstrations show exactly what the search returns."""
    from orchestrator.tools.base import call_batch
    from orchestrator.tools.search import WikiSearch

    tool = WikiSearch(**{k: v for k, v in tool_cfg.items() if k != "_target_"})
    return [result.text for result in call_batch(tool, queries)]
