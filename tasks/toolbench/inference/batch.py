"""Search a batch of queries together and write each one's answer file as soon as it ends.

One answer file per query, ``<output_dir>/<query_id>_<method>.json`` in ToolBench's answer
format (what ToolBench's and StableToolBench's converters read), written atomically: it
exists only once complete, so a crashed run's finished queries are known by their files.
Each query's figures (LLM calls, API calls, tokens, time, sources) go to
``<output_dir>/query_stats.jsonl``, one line per query, written before the answer file.
Figures with wall time stay out of the answer file, which is the same in every run with the
same seed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import Query
from tasks.toolbench.inference.dfsdt import DFSDT
from tasks.toolbench.inference.driver import APIBackend, Policy, SearchOutcome, run_searches
from tasks.toolbench.inference.env import APIResult
from tasks.toolbench.inference.queries import env_from_query
from tasks.toolbench.inference.react import ReAct
from tasks.toolbench.inference.search import SearchConfig, SearchState

STATS_FILE = "query_stats.jsonl"
# Codes ToolBench's client gives to a call that never got an answer.
CODE_TIMEOUT, CODE_REQUEST_FAILED = 5, 12


def answer_path(output_dir: str | Path, query_id: str, method: str) -> Path:
    return Path(output_dir) / f"{query_id}_{method}.json"


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def append_line(path: Path, row: dict[str, Any]) -> None:
    data = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@dataclass
class BatchJob:
    """What a worker needs to search queries: settings, the seed and where answers go."""

    search: SearchConfig
    seed: int
    output_dir: str
    max_batch: int = 64
    tool_descriptions: dict[str, str] = field(default_factory=dict)


def search_batch(queries: list[Query], policy: Policy, api: APIBackend, job: BatchJob) -> list[dict[str, Any]]:
    """Search ``queries`` side by side; return each one's figures (in query order)."""
    method = job.search.method_name
    out_dir = Path(job.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    searches, runs = [], {}
    for query in queries:
        env = env_from_query(query, tool_descriptions=job.tool_descriptions)
        state = SearchState(env=env, config=job.search, parse=policy.parse)
        run = DFSDT(state, seed=job.seed) if job.search.method == "dfsdt" else ReAct(state, seed=job.seed)
        runs[env.query_id] = run
        searches.append((env.query_id, run.run()))
    figures: dict[str, dict[str, Any]] = {}

    def done(query_id: str, outcome: SearchOutcome) -> None:
        run = runs[query_id]
        row: dict[str, Any] = {"query_id": query_id, "method": method, **run.state.stats(),
                               "seconds": round(outcome.seconds, 4), "error": outcome.error}
        answer = None
        if outcome.error is None:
            answer = run.to_json()
            generation = answer["answer_generation"]
            row.update(win=answer["win"], valid_data=generation["valid_data"],
                       finish_type=generation.get("finish_type") if generation["valid_data"] else None)
        append_line(out_dir / STATS_FILE, row)
        if answer is not None:
            write_atomic(answer_path(out_dir, query_id, method), json.dumps(answer, indent=2))
        figures[query_id] = row

    run_searches(searches, policy, api, max_batch=job.max_batch, on_done=done)
    return [figures[str(q.query_id)] for q in queries]


def local_backend(server: Any) -> APIBackend:
    """Calls answered by a :class:`VirtualAPIServer` in this process."""
    limit = server.cfg.max_observation_chars

    def call(bodies: list[dict[str, Any]]) -> list[APIResult]:
        return [APIResult(r.observation(limit), r.status_code, r.source) for r in server.handle_batch(bodies)]

    return call


def router_backend(router: Any, tool_name: str) -> APIBackend:
    """Calls answered by the server's Ray actors (a ToolRouter); a call the pool could not
    answer gets ToolBench's timeout (5) or request-failed (12) observation."""
    from orchestrator.tools.base import ToolCall

    def call(bodies: list[dict[str, Any]]) -> list[APIResult]:
        results = router.call([ToolCall(tool_name, json.dumps(b)) for b in bodies])
        out = []
        for result in results:
            if result.ok:
                record = json.loads(result.text)
                out.append(APIResult(record["observation"], record["code"], record["source"]))
            elif result.error == "timeout":
                out.append(APIResult(json.dumps({"error": f"Timeout error...{result.text}", "response": ""}),
                                     CODE_TIMEOUT, "error"))
            else:
                out.append(APIResult(json.dumps({"error": f"request invalid, data error. {result.text}", "response": ""}),
                                     CODE_REQUEST_FAILED, "error"))
        return out

    return call


def http_backend(url: str, timeout_s: float = 60.0, concurrency: int = 8) -> APIBackend:
    """Calls posted to a ``/virtual`` endpoint: ours on Ray Serve, or StableToolBench's own
    server. The observation and code are computed as StableToolBench's client computes them
    (our endpoint's ``x-toolrl-source`` header adds the source, and code 2 for calls our
    validation rejected)."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from tasks.toolbench.server.wire import SOURCE_HEADER, APIResponse, cut_observation

    session = requests.Session()

    def one(body: dict[str, Any]) -> APIResult:
        try:
            reply = session.post(url, json=body, timeout=timeout_s)
        except requests.Timeout:
            return APIResult(json.dumps({"error": "Timeout error...", "response": ""}), CODE_TIMEOUT, "error")
        except requests.RequestException as err:
            return APIResult(json.dumps({"error": f"request invalid, data error. {err}", "response": ""}),
                             CODE_REQUEST_FAILED, "error")
        if reply.status_code != 200:
            text = json.dumps({"error": f"request invalid, data error. status_code={reply.status_code}", "response": ""})
            return APIResult(text, CODE_REQUEST_FAILED, "error")
        try:
            data = reply.json()
        except ValueError:
            return APIResult(json.dumps({"error": "request invalid, data error", "response": ""}), CODE_REQUEST_FAILED, "error")
        response = APIResponse(body=data, source=reply.headers.get(SOURCE_HEADER, "remote"))
        return APIResult(cut_observation(json.dumps(data)), response.status_code, response.source)

    def call(bodies: list[dict[str, Any]]) -> list[APIResult]:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(bodies)))) as pool:
            return list(pool.map(one, bodies))

    return call
