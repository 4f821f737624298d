"""Ray actors that host tools, and the router the environment calls.

Topology: one :class:`ToolPool` per tool, each with ``num_actors`` actors built from the
tool's Hydra config (so the tool object is created where it runs: a search index is
loaded once per actor, never pickled). A turn's calls are grouped by tool, split across
the pool's actors and dispatched at once; the router waits for all of them with one
deadline. An actor that misses the deadline is killed and restarted by Ray
(``max_restarts``); one that died answers with an error. Either way the episode gets an
error observation and the run goes on.

Each pool has its own concurrency limit (``max_concurrency`` on its actors): a slow
search index cannot starve the calculator.

Placement: on a cluster whose nodes declare the custom resource ``tool_node`` (cluster.yaml's
CPU workers), actors reserve a sliver of it and so run on those nodes, unless the task's
``tools.resources`` says otherwise. Where they went is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from orchestrator.tools.base import ToolCall, ToolResult, call_batch

log = logging.getLogger(__name__)

# The custom resource of tool nodes (cluster.yaml), and what one actor reserves of it.
TOOL_NODE_RESOURCE = "tool_node"
TOOL_NODE_SHARE = 0.01


class ToolActor:
    """Hosts one tool built from its Hydra config; answers batches of queries."""

    def __init__(self, tool_cfg: dict[str, Any]) -> None:
        import hydra.utils

        self.tool = hydra.utils.instantiate(tool_cfg)

    def describe(self) -> tuple[str, str]:
        return self.tool.name, getattr(self.tool, "description", "")

    def call_batch(self, queries: list[str]) -> list[ToolResult]:
        return call_batch(self.tool, queries)

    def info(self) -> dict[str, Any]:
        """What the tool reports about itself for the run's config (e.g. a sandbox's measured
        isolation level): its ``isolation`` attribute when it has one."""
        return {"isolation": self.tool.isolation} if hasattr(self.tool, "isolation") else {}

    def pid(self) -> int:
        import os

        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


@dataclass
class PoolOptions:
    """How a tool's actors are placed and guarded (``conf/tools``)."""

    # Actors serving this tool; calls of a turn are split across them.
    num_actors: int = 1
    # CPUs each actor reserves. 0 keeps light tools from taking Train workers' slots.
    num_cpus: float = 0.0
    # Custom Ray resources each actor needs, e.g. {"tool_node": 0.01} to pin to tool nodes.
    resources: dict[str, float] = field(default_factory=dict)
    # Seconds a batch may take before its actor is killed and restarted.
    timeout_s: float = 30.0
    # Concurrent batches one actor accepts (threads); a pool's own limit.
    max_concurrency: int = 4
    # Restarts Ray grants a dead actor (-1: unlimited).
    max_restarts: int = -1


class ToolPool:
    """A tool's actors. Picklable: train workers receive it and call the same actors."""

    def __init__(self, name: str, tool_cfg: dict[str, Any], options: PoolOptions, actor_prefix: str = "") -> None:
        self.name = name
        self.options = options
        actor_cls = ray.remote(ToolActor)
        self.actors = []
        for i in range(options.num_actors):
            actor_opts: dict[str, Any] = dict(
                num_cpus=options.num_cpus,
                max_restarts=options.max_restarts,
                max_concurrency=options.max_concurrency,
                # Not in the caller's placement group (a sweep trial's holds one sliver of CPU):
                # tool actors are placed by their own resources, e.g. on tool nodes.
                scheduling_strategy="DEFAULT",
            )
            if options.resources:
                actor_opts["resources"] = dict(options.resources)
            if actor_prefix:
                # Named actors let several runs on one cluster share a pool (e.g. one
                # search index per node); get_if_exists joins the existing one.
                actor_opts.update(name=f"{actor_prefix}{name}-{i}", get_if_exists=True, lifetime=None)
            self.actors.append(actor_cls.options(**actor_opts).remote(tool_cfg))
        self.description = ""
        self.info: dict[str, Any] = {}
        self.node_ids: list[str] = []

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every actor has built its tool (a slow index load shows up here)."""
        names = ray.get([a.describe.remote() for a in self.actors], timeout=timeout_s)
        built_name, self.description = names[0]
        self.info = ray.get(self.actors[0].info.remote(), timeout=timeout_s)
        self.node_ids = ray.get([a.node_id.remote() for a in self.actors], timeout=timeout_s)
        if built_name != self.name:
            raise ValueError(f"tool config for {self.name!r} builds a tool named {built_name!r}; make the names agree")

    def submit(self, queries: list[str]) -> list[tuple[Any, list[int]]]:
        """Split ``queries`` across actors; return (object ref, query positions) pairs."""
        n = len(self.actors)
        chunks = [list(range(i, len(queries), n)) for i in range(n)]
        return [
            (actor.call_batch.remote([queries[j] for j in chunk]), chunk)
            for actor, chunk in zip(self.actors, chunks)
            if chunk
        ]

    @staticmethod
    def wait_actor(actor: Any, timeout_s: float) -> bool:
        """Wait until a restarting actor answers again; False if it does not within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(actor.describe.remote(), timeout=max(deadline - time.monotonic(), 0.01))
                return True
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                time.sleep(0.05)
            except ray.exceptions.RayActorError:
                return False
        return False

    def kill_actor_of(self, ref_index: int) -> None:
        """Kill the actor behind the ``ref_index``-th submitted chunk; Ray restarts it."""
        actor = self.actors[ref_index % len(self.actors)]
        ray.kill(actor, no_restart=False)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


@dataclass
class ToolStats:
    """Counters the environment reports as ``tools/*``."""

    calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class ToolRouter:
    """Sends a turn's calls to the right pools at once and gathers the answers in order."""

    def __init__(self, pools: dict[str, ToolPool]) -> None:
        self.pools = pools
        self.stats = ToolStats()

    @property
    def tool_names(self) -> list[str]:
        return sorted(self.pools)

    def info(self) -> dict[str, dict[str, Any]]:
        return {name: pool.info for name, pool in self.pools.items() if pool.info}

    def call(self, calls: list[ToolCall]) -> list[ToolResult]:
        start = time.perf_counter()
        results: list[ToolResult | None] = [None] * len(calls)
        pending = []  # (pool, chunk index, ref, positions in `calls`)
        by_tool: dict[str, list[int]] = {}
        for i, c in enumerate(calls):
            if c.tool in self.pools:
                by_tool.setdefault(c.tool, []).append(i)
            else:
                known = ", ".join(self.tool_names) or "none"
                results[i] = ToolResult.failure("unknown_tool", f"unknown tool {c.tool!r}; available tools: {known}")
        for tool, idx in by_tool.items():
            pool = self.pools[tool]
            for k, (ref, chunk) in enumerate(pool.submit([calls[i].query for i in idx])):
                pending.append((pool, k, ref, [idx[j] for j in chunk]))

        deadline = time.monotonic() + max((p[0].options.timeout_s for p in pending), default=0.0)
        retried = False
        while pending:
            refs = [p[2] for p in pending]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=max(deadline - time.monotonic(), 0.0))
            ready_set = set(ready)
            retry = []
            for pool, k, ref, positions in pending:
                if ref in ready_set:
                    try:
                        answers = ray.get(ref)
                    except ray.exceptions.ActorUnavailableError:
                        if not retried:  # the actor is restarting (after a crash or our kill): ask again once
                            retry.append((pool, k, positions))
                            continue
                        answers = [ToolResult.failure("actor_died", f"tool {pool.name} is restarting")] * len(positions)
                    except ray.exceptions.RayActorError as err:
                        answers = [ToolResult.failure("actor_died", f"tool {pool.name} crashed ({type(err).__name__})")] * len(positions)
                    except Exception as err:  # noqa: BLE001 - surfaced to the model as an error
                        answers = [ToolResult.failure("tool_error", f"{type(err).__name__}: {err}")] * len(positions)
                else:
                    log.warning("tool %s timed out after %.1fs; restarting its actor", pool.name, pool.options.timeout_s)
                    pool.kill_actor_of(k)
                    answers = [ToolResult.failure("timeout", f"tool {pool.name} timed out after {pool.options.timeout_s:g}s")] * len(positions)
                for pos, answer in zip(positions, answers):
                    results[pos] = answer
            retried = True
            pending = []
            for pool, k, positions in retry:
                actor = pool.actors[k % len(pool.actors)]
                pool.wait_actor(actor, pool.options.timeout_s)
                pending.append((pool, k, actor.call_batch.remote([calls[i].query for i in positions]), positions))
            deadline = time.monotonic() + max((p[0].options.timeout_s for p in pending), default=0.0)

        self.stats.calls += len(calls)
        for r in results:
            if r is not None and r.error:
                self.stats.add_error(r.error)
        self.stats.seconds += time.perf_counter() - start
        return [r for r in results]  # type: ignore[misc]

    def reset_stats(self) -> ToolStats:
        stats, self.stats = self.stats, ToolStats()
        return stats

    def shutdown(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()


def place(options: PoolOptions, cluster_resources: dict[str, float] | None = None) -> PoolOptions:
    """``options`` with tool actors sent to tool nodes when the cluster has some and the
    task chose no custom resources itself."""
    if options.resources:
        return options
    available = ray.cluster_resources() if cluster_resources is None else cluster_resources
    if available.get(TOOL_NODE_RESOURCE, 0) <= 0:
        return options
    return dataclasses.replace(options, resources={TOOL_NODE_RESOURCE: TOOL_NODE_SHARE})


def describe_placement(pools: dict[str, ToolPool]) -> str:
    """'Calculator: 2 actors on node 3f2a9c01 (tool_node)' per pool, from the actors themselves."""
    tool_nodes = {n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(TOOL_NODE_RESOURCE)}
    parts = []
    for name, pool in sorted(pools.items()):
        nodes = sorted(set(pool.node_ids))
        where = ", ".join(f"{n[:8]}{' (tool_node)' if n in tool_nodes else ''}" for n in nodes)
        parts.append(f"{name}: {len(pool.actors)} actor(s) on node {where}")
    return "; ".join(parts)


def build_router(tools_cfg: list[dict[str, Any]], options: PoolOptions, actor_prefix: str = "") -> ToolRouter:
    """Create one pool per tool config (each a Hydra ``_target_`` dict) and wait for them."""
    placed = place(options)
    if placed is not options:
        log.info("tools: the cluster has %s nodes; tool actors reserve %s=%g each", TOOL_NODE_RESOURCE,
                 TOOL_NODE_RESOURCE, TOOL_NODE_SHARE)
    options = placed
    pools = {}
    for cfg in tools_cfg:
        cfg = dict(cfg)
        name = cfg.get("name")
        if not name:
            raise ValueError(f"tool config {cfg} needs a 'name' (what the model writes in <request><name>)")
        pools[name] = ToolPool(name, cfg, options, actor_prefix=actor_prefix)
    for pool in pools.values():
        pool.wait_ready()
    log.info("tools: %s", describe_placement(pools))
    return ToolRouter(pools)
