"""The virtual RapidAPI server: a call in, a ToolBench body out, and where it came from.

For each call, in order:

1. read the arguments (not a JSON object: ToolBench's ``Tool input parse error``);
2. check them against the API (an unknown or missing argument: the ``Function executing
   ... error`` text a real ToolBench call gives);
3. look the call up in the cache, keyed by the canonical JSON of (tool, api, arguments).
   A recorded answer wins over step 2's verdict: it is what the real API said to exactly
   these arguments (the sample's trees hold such a recorded error);
4. on a miss: the real API when a key is configured (kept when it looks real), the LLM
   simulator when configured and the API has no schema (or ``llm_first``), both written back
   to the cache; else the schema simulator, deterministic from the run's seed and the key.

Every answer names its source (cache, simulated, llm, real, invalid) and the server counts
them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import find_answer_files, read_query_file
from tasks.toolbench.server.cache import CacheEntry, ResponseCache, append_entry, cache_key
from tasks.toolbench.server.registry import APIRegistry, ServedAPI, request_names
from tasks.toolbench.server.remote import LLMSimulator, LLMSimulatorConfig, RealAPI, RealAPIConfig
from tasks.toolbench.server.seeding import import_stabletoolbench_cache, seed_from_answers
from tasks.toolbench.server.simulate import echo_body, has_schema, simulate_body
from tasks.toolbench.server.validate import PARSE_ERROR, argument_error, execution_error, parse_tool_input
from tasks.toolbench.server.wire import (CACHE, INVALID, LLM, MAX_OBSERVATION_CHARS, REAL, SIMULATED, APIRequest,
                                         APIResponse, error_body)

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """What the server loads and how it answers (``conf/infer``'s ``server``)."""

    # Query files whose api_list entries define the APIs (ToolBench or StableToolBench).
    query_files: list[str] = field(default_factory=list)
    # Answer files or folders: their recorded calls seed the cache, their functions register APIs.
    answer_paths: list[str] = field(default_factory=list)
    # StableToolBench's tool_response_cache folder to import.
    stabletoolbench_cache: str | None = None
    # ToolBench's toolenv/response_examples folder (schemas for APIs without a template_response).
    response_examples: str | None = None
    # JSON-lines cache loaded at start; LLM and real answers are appended to it.
    cache_file: str | None = None
    # Seed of the schema simulator (one call, one answer, for a given seed).
    seed: int = 0
    # Observations are cut here, as ToolBench's max_observation_length.
    max_observation_chars: int = MAX_OBSERVATION_CHARS
    # Check arguments against the API before simulating.
    validate: bool = True
    # LLM simulator settings (LLMSimulatorConfig fields); None: off.
    llm: dict[str, Any] | None = None
    # Ask the LLM simulator even when the API has a schema.
    llm_first: bool = False
    # Real RapidAPI settings (RealAPIConfig fields); None: off. Used only with a key.
    real: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_observation_chars < 1:
            raise ValueError(f"server.max_observation_chars must be >= 1, got {self.max_observation_chars}")


class VirtualAPIServer:
    def __init__(self, cfg: ServerConfig | None = None) -> None:
        self.cfg = cfg or ServerConfig()
        self.registry = APIRegistry()
        self.cache = ResponseCache()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        for path in self.cfg.query_files:
            self.registry.add_records((api for q in read_query_file(path) for api in q.api_list), origin=str(path))
        answer_files = [f for p in self.cfg.answer_paths for f in find_answer_files(p, method="")]
        if answer_files:
            report = seed_from_answers(self.cache, self.registry, answer_files)
            log.info("cache: %d calls from %d answer files, %d entries (skipped %s)", report.calls,
                     len(answer_files), report.added, report.skipped or "none")
        if self.cfg.stabletoolbench_cache:
            report = import_stabletoolbench_cache(self.cache, self.cfg.stabletoolbench_cache)
            log.info("cache: %d StableToolBench entries imported (skipped %s)", report.added, report.skipped or "none")
        if self.cfg.response_examples:
            self.registry.add_response_examples(self.cfg.response_examples)
        if self.cfg.cache_file and Path(self.cfg.cache_file).exists():
            self.cache.load(self.cfg.cache_file)
        self.llm = LLMSimulator(LLMSimulatorConfig(**self.cfg.llm)) if self.cfg.llm else None
        self.real = RealAPI(RealAPIConfig(**self.cfg.real)) if self.cfg.real else None

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "VirtualAPIServer":
        return cls(ServerConfig(**cfg))

    def handle(self, body: Any) -> APIResponse:
        """Answer one StableToolBench request body (raises BadRequest for an unreadable one)."""
        request = APIRequest.from_body(body)
        response = self._answer(request)
        with self._lock:
            self.counts[response.source] += 1
        return response

    def handle_batch(self, bodies: list[Any]) -> list[APIResponse]:
        return [self.handle(b) for b in bodies]

    def source_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def _answer(self, request: APIRequest) -> APIResponse:
        category, tool, api = request_names(request.category, request.tool_name, request.api_name)
        served = self.registry.get(tool, api)
        arguments = parse_tool_input(request.tool_input)
        if arguments is None:
            return APIResponse(error_body(PARSE_ERROR), INVALID)
        key = cache_key(tool, api, arguments)
        entry = self.cache.get(key)
        if entry is not None:
            return APIResponse(entry.body, CACHE, entry.text)
        if served is not None and self.cfg.validate and served.kind != "example":
            problem = argument_error(api, arguments, served.required, served.optional)
            if problem is not None:
                return APIResponse(error_body(execution_error(served.category or category, tool, api, problem)), INVALID)
        if self.real is not None and self.real.key(request.toolbench_key):
            body = self.real.call({**request.to_body(), "tool_input": arguments}, request.toolbench_key)
            if body is not None:
                self._remember(key, CacheEntry(body=body, origin="real"))
                return APIResponse(body, REAL)
        schema = served.schema if served is not None else None
        if self.llm is not None and (self.cfg.llm_first or not has_schema(schema)):
            body = self.llm.respond(self._api_doc(served, category, tool, api), self._examples(tool, api), arguments)
            if body is not None:
                self._remember(key, CacheEntry(body=body, origin=self.llm.name))
                return APIResponse(body, LLM)
        if has_schema(schema):
            return APIResponse(simulate_body(schema, self.cfg.seed, key, arguments), SIMULATED)
        return APIResponse(echo_body(api, arguments, self.cfg.seed, key), SIMULATED)

    def _remember(self, key: str, entry: CacheEntry) -> None:
        if self.cache.put(key, entry) and self.cfg.cache_file:
            append_entry(self.cfg.cache_file, key, entry)

    def _api_doc(self, served: ServedAPI | None, category: str, tool: str, api: str) -> dict[str, Any]:
        if served is None:
            return {"category": category, "tool": tool, "name": api}
        return {**served.doc, "arguments": {"required": list(served.required), "optional": list(served.optional)}}

    def _examples(self, tool: str, api: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Cached calls of the same API, as (arguments, body) pairs, for the LLM's prompt."""
        import json

        prefix = json.dumps([tool, api], ensure_ascii=False, separators=(",", ":"))[:-1] + ","
        out = []
        for key, entry in self.cache.items():
            if key.startswith(prefix):
                out.append((json.loads(key)[2], entry.body))
        return out
