"""Runs many searches side by side: each round, every search's API calls go to the server in
one batch, then every search waiting on the model goes to the policy in one batch.

The policy is the expensive part, so a round asks it for all the open nodes of all queries
at once (in chunks of ``max_batch``). Searches advance in the order they were given, so a
run with the same queries, policy and seed does the same work in the same batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tasks.toolbench.conversation import Step
from tasks.toolbench.inference.env import APIResult
from tasks.toolbench.inference.search import APICall, LLMCall, LLMReply, Search
from tasks.toolbench.render import ParseError

log = logging.getLogger(__name__)

# Answers a batch of StableToolBench request bodies, in order.
APIBackend = Callable[[list[dict[str, Any]]], list[APIResult]]


class Policy(Protocol):
    """Writes the next step of each request's conversation (one reply per request, in order),
    and reads a reply's text as a step with its template's strict parser."""

    def generate(self, calls: list[LLMCall]) -> list[LLMReply]: ...

    def parse(self, text: str) -> "Step | ParseError": ...


@dataclass
class SearchOutcome:
    """How one search ended: ``error`` holds the exception text when it crashed."""

    seconds: float = 0.0
    error: str | None = None


@dataclass
class DriverStats:
    rounds: int = 0
    llm_batches: int = 0
    llm_batch_sizes: list[int] = field(default_factory=list)
    api_batches: int = 0


def run_searches(searches: list[tuple[str, Search]], policy: Policy, api: APIBackend,
                 max_batch: int = 64, on_done: Callable[[str, SearchOutcome], None] | None = None) -> tuple[dict[str, SearchOutcome], DriverStats]:
    """Drive ``searches`` (query id, generator) to the end; return each one's outcome."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    order = {qid: i for i, (qid, _) in enumerate(searches)}
    gens = dict(searches)
    started = {qid: time.perf_counter() for qid in gens}
    outcomes: dict[str, SearchOutcome] = {}
    pending: dict[str, LLMCall | APICall] = {}
    stats = DriverStats()

    def finish(qid: str, error: str | None) -> None:
        outcomes[qid] = SearchOutcome(seconds=time.perf_counter() - started[qid], error=error)
        pending.pop(qid, None)
        if on_done is not None:
            on_done(qid, outcomes[qid])

    def advance(qid: str, value: Any) -> None:
        try:
            request = gens[qid].send(value)
        except StopIteration:
            finish(qid, None)
            return
        except Exception as err:  # noqa: BLE001 - one broken query must not end the others
            log.exception("search of query %s failed", qid)
            finish(qid, f"{type(err).__name__}: {err}")
            return
        pending[qid] = request

    for qid, _ in searches:
        advance(qid, None)
    while pending:
        stats.rounds += 1
        waiting = sorted(pending, key=order.__getitem__)
        api_ids = [q for q in waiting if isinstance(pending[q], APICall)]
        if api_ids:
            stats.api_batches += 1
            results = api([pending[q].request for q in api_ids])  # type: ignore[union-attr]
            for qid, result in zip(api_ids, results, strict=True):
                advance(qid, result)
            continue
        llm_ids = [q for q in waiting if isinstance(pending[q], LLMCall)]
        for start in range(0, len(llm_ids), max_batch):
            chunk = llm_ids[start:start + max_batch]
            replies = policy.generate([pending[q] for q in chunk])  # type: ignore[misc]
            if len(replies) != len(chunk):
                raise RuntimeError(f"policy returned {len(replies)} replies for {len(chunk)} requests")
            stats.llm_batches += 1
            stats.llm_batch_sizes.append(len(chunk))
            for qid, reply in zip(chunk, replies):
                advance(qid, reply)
    return outcomes, stats
