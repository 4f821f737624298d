"""Evaluate a policy on a query set: DFSDT or ReAct over the virtual API server, on Ray.

    metrics = run_evaluation("G1_instruction", policy_cfg={"kind": "hf", "path": ckpt},
                             search_cfg={"method": "dfsdt"}, server_cfg={...},
                             output_dir="outputs/eval/G1_instruction", seed=0, num_queries=20)

Layout on Ray: the virtual API server runs in tool actors (orchestrator.tools.pool, like
every tool); ``num_workers`` search workers each hold the policy (one GPU each on a GPU
cluster) and search ``queries_per_batch`` queries at a time, their LLM calls batched
together. Queries whose answer file exists are skipped, so a crashed run is resumed by
running it again. ``use_ray=False`` runs the same thing in this process.

The answer files (and so the outputs) depend only on the queries, the policy, the settings
and ``seed``: the seed drives the policy's sampling, the server's simulator and DFSDT's
final give-up pick, each derived per query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import Query
from tasks.toolbench.inference.batch import (BatchJob, answer_path, http_backend, local_backend, router_backend,
                                             search_batch)
from tasks.toolbench.inference.policy import build_policy
from tasks.toolbench.inference.queries import QuerySource, load_queries, query_file
from tasks.toolbench.inference.search import SearchConfig
from tasks.toolbench.inference.summary import finished_figures, metrics_of, show_summary

log = logging.getLogger(__name__)

SERVER_TOOL = "RapidAPI"


@dataclass
class RunnerConfig:
    """How the queries are spread over the cluster."""

    # Search workers (each loads the policy once).
    num_workers: int = 1
    # Queries a worker searches at once; their LLM calls share batches.
    queries_per_batch: int = 8
    # Most LLM calls in one policy call.
    max_batch: int = 64
    # Resources of one search worker.
    worker_num_cpus: float = 1.0
    worker_num_gpus: float = 0.0
    # Tool actors serving the virtual API server.
    server_actors: int = 1
    # False: everything in this process (no Ray).
    use_ray: bool = True
    # A running /virtual endpoint (ours on Ray Serve, or StableToolBench's server) to send the
    # API calls to instead of starting the server here; server_cfg is then unused.
    server_url: str | None = None
    # A progress bar and the summary table on stderr.
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("num_workers", "queries_per_batch", "max_batch", "server_actors"):
            if getattr(self, name) < 1:
                raise ValueError(f"runner.{name} must be >= 1, got {getattr(self, name)}")


def run_evaluation(queries: QuerySource, policy_cfg: Mapping[str, Any], search_cfg: Mapping[str, Any] | SearchConfig,
                   server_cfg: Mapping[str, Any], output_dir: str | Path, seed: int = 0,
                   num_queries: int | None = None, runner_cfg: Mapping[str, Any] | RunnerConfig | None = None,
                   tool_descriptions: Mapping[str, str] | None = None) -> dict[str, float]:
    """Search every query not yet answered in ``output_dir``; return the run's metrics.

    ``policy_cfg``: ``{"kind": "hf" | "openai" | "scripted", ...}`` (see policy.build_policy;
    ``seed`` is filled in from ``seed`` when absent). ``search_cfg``: SearchConfig fields.
    ``server_cfg``: ServerConfig fields (its ``seed`` defaults to ``seed``, its
    ``query_files`` to the queries' own file).
    """
    start = time.perf_counter()
    search = search_cfg if isinstance(search_cfg, SearchConfig) else SearchConfig(**dict(search_cfg))
    runner = runner_cfg if isinstance(runner_cfg, RunnerConfig) else RunnerConfig(**dict(runner_cfg or {}))
    policy_cfg = dict(policy_cfg)
    if policy_cfg.get("kind") in ("hf", "openai"):
        policy_cfg.setdefault("seed", seed)
    server_cfg = {"seed": seed, **dict(server_cfg)}
    if not server_cfg.get("query_files") and query_file(queries) is not None:
        # The server learns the APIs (arguments, response schemas) from the queries' own file.
        server_cfg["query_files"] = [str(query_file(queries))]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    all_queries = load_queries(queries, num_queries)
    method = search.method_name
    pending = [q for q in all_queries if not _finished(answer_path(output_dir, str(q.query_id), method))]
    skipped = len(all_queries) - len(pending)
    if skipped:
        log.info("%d of %d queries already answered in %s; searching the other %d", skipped, len(all_queries),
                 output_dir, len(pending))
    job = BatchJob(search=search, seed=seed, output_dir=str(output_dir), max_batch=runner.max_batch,
                   tool_descriptions=dict(tool_descriptions or {}))
    batches = [pending[i:i + runner.queries_per_batch] for i in range(0, len(pending), runner.queries_per_batch)]
    if not batches:
        figures: list[dict[str, Any]] = []
    elif runner.use_ray:
        figures = _run_on_ray(batches, policy_cfg, server_cfg, job, runner)
    else:
        figures = _run_here(batches, policy_cfg, server_cfg, job, runner)
    everything = finished_figures(output_dir, [str(q.query_id) for q in all_queries], method)
    metrics = metrics_of(everything, searched=len(figures), skipped=skipped, seconds=time.perf_counter() - start)
    show_summary(metrics, method, output_dir, to_console=runner.progress)
    return metrics


def _finished(path: Path) -> bool:
    """An answer file exists and parses (a torn file from a crash is searched again)."""
    import json

    try:
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="queries", unit="q", disable=not enabled)


def _run_here(batches: list[list[Query]], policy_cfg: dict[str, Any], server_cfg: dict[str, Any], job: BatchJob,
              runner: RunnerConfig) -> list[dict[str, Any]]:
    from tasks.toolbench.server import ServerConfig, VirtualAPIServer

    policy = build_policy(policy_cfg)
    if runner.server_url:
        api = http_backend(runner.server_url)
    else:
        api = local_backend(VirtualAPIServer(ServerConfig(**server_cfg)))
    figures = []
    with _progress(sum(len(b) for b in batches), runner.progress) as bar:
        for batch in batches:
            done = search_batch(batch, policy, api, job)
            figures += done
            bar.update(len(done))
    return figures


class SearchWorker:
    """A Ray actor that holds one policy and searches batches of queries."""

    def __init__(self, policy_cfg: dict[str, Any], job: BatchJob, router: Any, server_url: str | None) -> None:
        self.policy = build_policy(policy_cfg)
        self.job = job
        self.api = http_backend(server_url) if server_url else router_backend(router, SERVER_TOOL)

    def search(self, batch: list[Query]) -> list[dict[str, Any]]:
        return search_batch(batch, self.policy, self.api, self.job)


def _run_on_ray(batches: list[list[Query]], policy_cfg: dict[str, Any], server_cfg: dict[str, Any], job: BatchJob,
                runner: RunnerConfig) -> list[dict[str, Any]]:
    import ray

    from orchestrator.tools.pool import PoolOptions, build_router

    own_ray = not ray.is_initialized()
    if own_ray:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    router = None
    if not runner.server_url:
        tool_cfg = {"_target_": "tasks.toolbench.server.tool.VirtualRapidAPI", "name": SERVER_TOOL, **server_cfg}
        router = build_router([tool_cfg], PoolOptions(num_actors=runner.server_actors, timeout_s=120.0))
    worker_cls = ray.remote(SearchWorker).options(num_cpus=runner.worker_num_cpus, num_gpus=runner.worker_num_gpus)
    workers = [worker_cls.remote(policy_cfg, job, router, runner.server_url)
               for _ in range(min(runner.num_workers, len(batches)))]
    figures: list[dict[str, Any]] = []
    queue = list(enumerate(batches))
    in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (worker, batch index)

    def submit(worker: int) -> None:
        if queue:
            index, batch = queue.pop(0)
            in_flight[workers[worker].search.remote(batch)] = (worker, index)

    try:
        with _progress(sum(len(b) for b in batches), runner.progress) as bar:
            for w in range(len(workers)):  # two batches per worker: the next waits while one runs
                submit(w)
                submit(w)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                worker, index = in_flight.pop(ready[0])
                done = ray.get(ready[0])  # a worker's failure ends the run; rerunning resumes it
                figures += done
                bar.update(len(done))
                submit(worker)
    finally:
        for w in workers:
            ray.kill(w)
        if router is not None:
            router.shutdown()
        if own_ray:
            ray.shutdown()
    return figures
