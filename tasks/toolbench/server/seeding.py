"""Filling the cache: from the API calls recorded in answer trees, and from StableToolBench's
own cache folder.

An answer tree records each call the model made as an ``Action`` node (the function name)
with an ``Action Input`` child (the argument text, the observation and its code). Calls that
returned code 0 reached the API; their observation is ``json.dumps(body)`` as ToolBench's
client wrote it, cut at 1,024 characters. An uncut observation is stored as its body (the
body dumps back to the same bytes); a cut one is stored as its text, with the body recovered
as far as the cut allows, for HTTP clients.

StableToolBench's cache folder: ``<category>/<tool>_for_<category>/<api>.json``, each a
mapping from ``str(tool_input)`` (a Python dict's repr) to a body (THUNLP-MT/StableToolBench
@aa4ed9f, ``server/main.py``: ``save_cache``).
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from json.decoder import scanstring
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import TreeNode, read_answer_file
from tasks.toolbench.names import standardize
from tasks.toolbench.server.cache import CacheEntry, ResponseCache, cache_key
from tasks.toolbench.server.registry import APIRegistry, ServedAPI
from tasks.toolbench.server.validate import parse_tool_input

log = logging.getLogger(__name__)


@dataclass
class SeedReport:
    """What a seeding pass read: calls seen, entries added, and what it had to skip."""

    calls: int = 0
    added: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


@dataclass(frozen=True)
class RecordedCall:
    """One call an answer tree recorded, resolved to the API it reached."""

    api: ServedAPI
    arguments: dict[str, Any]
    observation: str
    code: int
    file: str


def recorded_calls(path: str | Path, registry: APIRegistry, report: SeedReport | None = None) -> list[RecordedCall]:
    """The code-0 calls of one answer file, in tree order; registers its functions' APIs."""
    answer = read_answer_file(path)
    by_name = registry.add_functions(answer.functions, origin=str(path))
    calls = []
    if answer.tree is None:
        return calls
    stack: list[tuple[TreeNode, TreeNode | None]] = [(answer.tree, None)]
    while stack:
        node, parent = stack.pop()
        stack.extend((child, node) for child in reversed(node.children))
        if node.node_type != "Action Input" or parent is None or parent.node_type != "Action":
            continue
        if node.observation_code != 0 or node.observation is None:
            continue
        if report is not None:
            report.calls += 1
        api = _resolve(parent.description, by_name)
        args = parse_tool_input(node.description)
        if api is None or args is None:
            if report is not None:
                report.skip("unknown function" if api is None else "arguments not a JSON object")
            continue
        calls.append(RecordedCall(api, args, node.observation, 0, str(path)))
    return calls


def _resolve(name: str, by_name: dict[str, ServedAPI]) -> ServedAPI | None:
    if name in by_name:
        return by_name[name]
    return next((api for fn, api in by_name.items() if name and fn.endswith(name)), None)


def entry_from_observation(observation: str, origin: str) -> CacheEntry:
    """A cache entry that gives back ``observation`` exactly."""
    try:
        body = json.loads(observation)
        if isinstance(body, dict) and json.dumps(body) == observation:
            return CacheEntry(body=body, origin=origin)
    except json.JSONDecodeError:
        pass
    return CacheEntry(body=recover_body(observation), text=observation, origin=origin)


def recover_body(observation: str) -> dict[str, Any]:
    """The body of a cut observation, as far as the cut allows: ``{"error": e, "response":
    the response text up to the cut}``. Dumped again, its first 1,024 characters are the
    observation's unless the cut fell inside an escape sequence."""
    text = observation[:-3] if observation.endswith("...") else observation
    head = '{"error": "'
    try:
        if not text.startswith(head):
            raise ValueError("not a ToolBench body")
        error, end = scanstring(text, len(head))
        rest = text[end:]
        if not rest.startswith(', "response": "'):
            raise ValueError("no string response")
        body_start = end + len(', "response": "')
        for trim in range(0, 7):  # a cut escape (\\uXXXX) is at most 6 characters
            try:
                response, _ = scanstring(text[: len(text) - trim] + '"', body_start)
                return {"error": error, "response": response}
            except ValueError:
                continue
    except ValueError:
        pass
    return {"error": "", "response": text}


def seed_from_answers(cache: ResponseCache, registry: APIRegistry, paths: Iterable[str | Path]) -> SeedReport:
    """Put every code-0 call of the answer files ``paths`` in the cache (the first recording
    of a call wins; a different later one is counted in ``cache.conflicts``)."""
    report = SeedReport()
    for path in paths:
        for call in recorded_calls(path, registry, report):
            key = cache_key(call.api.tool, call.api.api, call.arguments)
            report.added += cache.put(key, entry_from_observation(call.observation, f"tree:{Path(path).name}"))
    return report


def import_stabletoolbench_cache(cache: ResponseCache, folder: str | Path) -> SeedReport:
    """Add StableToolBench's cached responses (their keys are parsed back into arguments)."""
    report = SeedReport()
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no StableToolBench cache folder (<category>/<tool>_for_<category>/<api>.json)")
    for path in sorted(folder.glob("*/*/*.json")):
        category = path.parent.parent.name
        tool_dir = path.parent.name
        suffix = f"_for_{category}"
        tool = standardize(tool_dir[: -len(suffix)] if tool_dir.endswith(suffix) else tool_dir)
        api = path.stem
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a StableToolBench cache file ({err})") from None
        if not isinstance(records, dict):
            raise ValueError(f"{path}: expected an object of str(tool_input) -> response, found {type(records).__name__}")
        for raw, body in records.items():
            report.calls += 1
            args = _arguments_from_key(raw)
            if args is None or not isinstance(body, dict):
                report.skip("unreadable key" if args is None else "body not an object")
                continue
            key = cache_key(tool, api, args)
            report.added += cache.put(key, CacheEntry(body=body, origin=f"stabletoolbench:{path.relative_to(folder)}"))
    return report


def _arguments_from_key(raw: str) -> dict[str, Any] | None:
    """StableToolBench keys are ``str(dict)``; JSON keys (other tools' caches) work too."""
    for reader in (ast.literal_eval, json.loads):
        try:
            value = reader(raw)
        except (ValueError, SyntaxError, json.JSONDecodeError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None
