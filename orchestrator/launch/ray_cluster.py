"""Starting or joining Ray, and checking the cluster can run what the config asks.

``ray.address`` unset starts an embedded local cluster; ``auto`` or ``host:port`` joins one.
Worker stdout is not forwarded to the driver (the console shows the run itself; see
:mod:`orchestrator.tracking.console`), and Ray's own log lines go to the run's log file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray

from orchestrator.config.checks import ConfigError

log = logging.getLogger(__name__)


def init_ray(ray_cfg: Any, forward_worker_output: bool = False) -> bool:
    """Connect to or start Ray. Returns True when this call started it (so we shut it down)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Ray Train's per-report console tables and Tune's progress reporter: the run prints its own.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING,
                                  log_to_driver=forward_worker_output, configure_logging=False)
    if ray_cfg.address:
        ray.init(address=ray_cfg.address, **kwargs)
    else:
        # "local": a new embedded cluster, never one that happens to run on this machine already
        # (ray.init() alone joins it, or hangs on a dead one's leftover address file).
        ray.init(address="local", num_cpus=ray_cfg.num_cpus, **kwargs)
    route_raylet_messages_to_log()
    return True


def route_raylet_messages_to_log() -> None:
    """Send the raylet's messages to the log file instead of stdout.

    Ray prints them on the driver's stdout whatever ``log_to_driver`` says ("N PYTHON worker
    processes have been started ...", every time a sweep starts a few trials at once on a small
    machine). The run's console is for the run; these go to the ``raylet`` logger, which
    the run's log file holds. Ray looks its printer up by name for every message, so replacing
    it here reaches the listener that ``ray.init`` already started; other output is untouched."""
    import ray._private.worker as ray_worker

    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "routes_raylet", False):
        return
    raylet_log = logging.getLogger("raylet")

    def print_or_log(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                raylet_log.warning("%s", line)
            return
        printer(data, ignore_prefix)

    print_or_log.routes_raylet = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = print_or_log


def cluster_cpus() -> float:
    return float(ray.cluster_resources().get("CPU", 1))


def _autoscaler_gpu_types() -> bool:
    """Whether the cluster's autoscaler can still add nodes with GPUs (cluster.yaml's worker types)."""
    if not ray.is_initialized():
        return False
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        pending = list(getattr(status, "pending_launches", []) or []) + list(getattr(status, "idle_nodes", []) or [])
        return any("GPU" in (getattr(n, "resources", None) or {}) for n in pending)
    except Exception:  # noqa: BLE001 - no autoscaler (a local cluster, a hand-started one)
        return False


def check_cluster(trainer_cfg: Any, storage: str, resources: dict[str, float] | None = None,
                  nodes: list[dict[str, Any]] | None = None) -> None:
    """Refuse, in one line, what the connected cluster cannot run: GPU workers without GPUs,
    or a local storage path on a cluster of several nodes (checkpoints must reach every node).
    ``resources``/``nodes`` default to the live cluster's (tests pass their own)."""
    resources = ray.cluster_resources() if resources is None else resources
    nodes = [n for n in (ray.nodes() if nodes is None else nodes) if n.get("Alive", True)]
    if trainer_cfg.use_gpu:
        gpus = resources.get("GPU", 0)
        if gpus < trainer_cfg.num_workers and not _autoscaler_gpu_types():
            raise ConfigError(f"trainer.use_gpu: true with trainer.num_workers={trainer_cfg.num_workers}, but the "
                              f"Ray cluster has {gpus:g} GPU(s) and no node type that adds more")
    hosts = {n.get("NodeManagerAddress") for n in nodes}  # several nodes of one machine share its disk
    if len(hosts) > 1 and is_local_path(storage):
        raise ConfigError(f"output_dir: {storage} is a local path, but the Ray cluster spans {len(hosts)} machines: "
                          "checkpoints written on one node are not seen by the others; give output_dir on storage every "
                          "node mounts (NFS, EFS) or a URI (s3://bucket/path, gs://...)")


def is_local_path(path: str) -> bool:
    """A plain path or file:// URI (shared storage is an NFS mount: the user says so by a URI or
    by ``TOOLRL_SHARED_STORAGE=1``)."""
    if os.environ.get("TOOLRL_SHARED_STORAGE") == "1":
        return False
    return "://" not in str(path) or str(path).startswith("file://")


def storage_path(output_dir: str) -> str:
    """Where Ray Train writes checkpoints: ``<output_dir>/ray``, for a local folder or a URI."""
    if "://" in output_dir:
        return output_dir.rstrip("/") + "/ray"
    return str(Path(output_dir) / "ray")
