"""Say on the console when a run's workers wait for resources the cluster does not have free.

Ray Train waits without end for a worker group it cannot place: right on a cluster that
autoscales, but on a fixed one (this machine, a hand-started cluster) the run just sits,
and Ray's own note about it goes to the log file. A run that asked 2 CPUs per worker beside
a sweep trial's coordinator sat silent for 20 minutes before this watch existed.

:class:`PlacementWatch` looks at Ray's placement groups every few seconds while ``fit`` runs;
one that has been PENDING for ``after_s`` gets a console line naming what it asks and what
is free, repeated every ``every_s`` while it waits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("toolrl")


def waiting_line(bundles: dict[Any, dict[str, float]], free: dict[str, float], waited_s: float) -> str:
    """The console line for a worker group that has waited ``waited_s`` to be placed."""
    asks = list(bundles.values())
    each = ", ".join(f"{k} {v:g}" for k, v in sorted(asks[0].items())) if asks else "?"
    same = all(a == asks[0] for a in asks)
    shown = {k: round(v, 2) for k, v in sorted(free.items()) if k in ("CPU", "GPU") or k.startswith("accelerator")}
    have = ", ".join(f"{k} {v:g}" for k, v in shown.items()) or "nothing"
    return (f"waiting {waited_s:.0f} s for Ray to place {len(asks)} worker(s) asking {each}"
            f"{' each' if same else ' (first)'}; free now: {have}. A fixed cluster will not free them: lower "
            "trainer.cpus_per_worker or trainer.num_workers, or add a node (`ray status` shows the demand).")


class PlacementWatch:
    """Finds placement groups pending for ``after_s`` and says so every ``every_s`` (no thread:
    :meth:`check` is called with the time; :func:`watching` runs it in one)."""

    def __init__(self, say: Callable[[str], None], table: Callable[[], dict[str, Any]],
                 free: Callable[[], dict[str, float]], after_s: float = 60.0, every_s: float = 60.0) -> None:
        self.say, self.table, self.free = say, table, free
        self.after_s, self.every_s = after_s, every_s
        self.pending_since: dict[str, float] = {}
        self.last_said = -float("inf")

    def check(self, now: float) -> str | None:
        """Look once; the line said, if any."""
        pending = {pid: pg for pid, pg in self.table().items() if pg.get("state") == "PENDING"}
        self.pending_since = {pid: self.pending_since.get(pid, now) for pid in pending}
        waited = sorted((now - since, pid) for pid, since in self.pending_since.items() if now - since >= self.after_s)
        if not waited or now - self.last_said < self.every_s:
            return None
        longest, pid = waited[-1]
        line = waiting_line(pending[pid].get("bundles", {}), self.free(), longest)
        self.say(line)
        self.last_said = now
        return line


@contextlib.contextmanager
def watching(say: Callable[[str], None] | None = None, after_s: float = 60.0, every_s: float = 60.0,
             poll_s: float = 5.0) -> Iterator[PlacementWatch]:
    """Run a :class:`PlacementWatch` on the live Ray cluster in a daemon thread for the block."""
    import ray
    from ray.util import placement_group_table

    watch = PlacementWatch(say or log.warning, placement_group_table, ray.available_resources, after_s, every_s)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(poll_s):
            try:
                watch.check(time.monotonic())
            except Exception:  # noqa: BLE001 - a failed look (GCS busy, shutting down) is not the run's problem
                continue

    thread = threading.Thread(target=loop, name="placement-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(timeout=poll_s + 5)
