"""Pre-forked sandbox workers and the pool that hands them out.

A worker is one sandbox (one bubblewrap) holding one zygote; starting it costs tens of
milliseconds, a run inside it only a fork. The pool keeps ``num_workers`` of them, gives
each caller thread an idle one, and replaces a worker that died, stopped answering or
asked to be recycled (its /tmp could not be wiped cheaply). Safe to call from many threads
(a Ray actor with ``max_concurrency > 1`` does).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.tools.sandbox.config import SandboxConfig, SandboxLimits, SandboxResult
from orchestrator.tools.sandbox.isolation import IsolationUnavailable, isolation_problem, weak_mode_warning
from orchestrator.tools.sandbox.launch import WorkerSpec, choose_mode, worker_spec

log = logging.getLogger(__name__)

# Seconds a worker gets beyond the program's timeout to kill, reap, wipe and reply.
REPLY_GRACE_S = 5.0


class WorkerError(RuntimeError):
    """The worker process failed (not the program): it died, hung or sent garbage."""


class WorkerGone(WorkerError):
    """The worker was dead before the request reached it: the program never ran."""


class Worker:
    """One running sandbox. Used by one thread at a time (the pool guarantees it)."""

    def __init__(self, spec: WorkerSpec, slot: int) -> None:
        self.spec = spec
        self.slot = slot
        self.info: dict[str, Any] = {}
        self._inner: list[tuple[int, str | None]] = []
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            spec.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=spec.env, cwd=spec.cwd, close_fds=True, start_new_session=True,
        )

    def wait_ready(self, timeout_s: float) -> None:
        self.info = self._recv(time.monotonic() + timeout_s)
        if not self.info.get("ready"):
            raise WorkerError(f"worker sent {self.info!r} instead of ready")
        # The zygote's host pid and PID namespace, kept to kill it even after bwrap is gone
        # (changing uid cleared its parent-death signal in bwrap-root mode).
        self._inner = [(pid, _pid_ns(pid)) for pid in self._children()]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        data = json.dumps(request).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as err:
            raise WorkerGone(f"worker gone before the run: {err}; {self.stderr_tail()}") from err
        return self._recv(time.monotonic() + timeout_s)

    def _recv(self, deadline: float) -> dict[str, Any]:
        header = self._read(4, deadline)
        (size,) = struct.unpack(">I", header)
        return json.loads(self._read(size, deadline))

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise WorkerError("worker did not answer in time")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise WorkerError(f"worker exited (code {self.proc.poll()}); {self.stderr_tail()}")
            buf += chunk
        return bytes(buf)

    def _children(self) -> list[int]:
        """Host pids of the launcher's children (bwrap's: the zygote); read while it lives."""
        pid = self.proc.pid
        try:
            return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
        except OSError:
            return []

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return text[-chars:].strip() or "(no stderr)"

    def close(self, kill: bool = False) -> None:
        """Stop the worker: EOF lets the zygote exit; SIGKILL if it lingers or ``kill``."""
        if not kill and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for pid, ns in self._inner:  # the sandbox's init: it takes its namespace along
            if ns is not None and _pid_ns(pid) == ns:
                _kill(pid)
        if self.proc.poll() is None:
            _kill(self.proc.pid)
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass
        for path in self.spec.cleanup_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_worker(
    config: SandboxConfig, mode: str, slot: int, *, preload: bool = True, spawner: ThreadPoolExecutor | None = None
) -> Worker:
    """Start a worker and wait until its zygote is ready.

    ``spawner``: the thread that forks it. bubblewrap's --die-with-parent fires when the
    *thread* that forked it exits, so a pool forks from one thread that lives as long as
    the pool, never from a short-lived caller thread.
    """
    spec = worker_spec(config, mode, slot, preload=preload)
    worker = spawner.submit(Worker, spec, slot).result() if spawner else Worker(spec, slot)
    try:
        worker.wait_ready(config.start_timeout_s)
    except (WorkerError, ValueError) as err:
        tail = worker.stderr_tail()
        worker.close(kill=True)
        raise WorkerError(f"{mode} worker {slot} did not start: {err}; stderr: {tail}") from err
    return worker


def run_on(worker: Worker, code: str, limits: SandboxLimits, timeout_s: float | None) -> tuple[SandboxResult, bool]:
    """Run ``code`` on ``worker``; returns the result and whether the worker must be replaced."""
    request = dict(limits.request_fields(timeout_s), code=code)
    try:
        reply = worker.run(request, request["timeout_s"] + REPLY_GRACE_S)
    except WorkerGone:
        raise
    except WorkerError as err:
        hung = "in time" in str(err)
        log.warning("sandbox worker %d failed: %s", worker.slot, err)
        return SandboxResult.failure(f"sandbox worker failed: {err}", timed_out=hung, limit_hit="wall_time" if hung else None), True
    if "error" in reply:
        return SandboxResult.failure(reply["error"]), True
    return SandboxResult.from_reply(reply), bool(reply.get("recycle"))


def require_isolation(config: SandboxConfig) -> str:
    """The launcher for ``config``; raises :class:`IsolationUnavailable` where its isolation
    cannot be given, and logs the warning of a weaker setting (at every start)."""
    problem = isolation_problem(config.isolation)
    if problem is not None:
        raise IsolationUnavailable(problem)
    warning = weak_mode_warning(config.isolation)
    if warning is not None:
        log.warning(warning)
    return choose_mode(config)


def run_once(code: str, config: SandboxConfig | None = None, limits: SandboxLimits | None = None, timeout_s: float | None = None) -> SandboxResult:
    """Run ``code`` in a sandbox started for it alone (no pool): the slow baseline of the bench."""
    config = config or SandboxConfig()
    worker = start_worker(config, require_isolation(config), 0, preload=False)
    try:
        return run_on(worker, code, limits or SandboxLimits(), timeout_s)[0]
    finally:
        worker.close()


class SandboxPool:
    """``num_workers`` pre-forked sandboxes. ``run`` blocks until a worker is free.

    With ``isolation="full"`` (the default) the pool refuses to start, raising
    :class:`IsolationUnavailable` with one line, where bubblewrap or any layer is missing, and
    again when its probe (``probe=True``) finds a layer that does not hold from inside.
    """

    def __init__(self, config: SandboxConfig | None = None, limits: SandboxLimits | None = None, probe: bool = True) -> None:
        self.config = config or SandboxConfig()
        self.limits = limits or SandboxLimits()
        self.mode = require_isolation(self.config)
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._all: dict[int, Worker] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self._start_all()
        self.isolation: dict[str, Any] = {}
        if probe:
            from orchestrator.tools.sandbox.probe import probe_pool

            self.isolation = probe_pool(self)
            if self.config.isolation == "full" and not self.isolation["full"]:
                self.close()
                raise IsolationUnavailable(
                    f"isolation=full, but the sandbox's probe found layers that do not hold here: "
                    f"{', '.join(self.isolation['gaps'])} (docs/sandbox.md)"
                )

    def _start_all(self) -> None:
        slots = range(self.config.workers())
        with ThreadPoolExecutor(max_workers=len(slots)) as ex:
            futures = [ex.submit(start_worker, self.config, self.mode, s, spawner=self._spawner) for s in slots]
        try:
            workers = [f.result() for f in futures]
        except WorkerError:
            for f in futures:  # the ones that did start; never a weaker fallback
                if f.exception() is None:
                    f.result().close(kill=True)
            raise
        for w in workers:
            self._all[w.slot] = w
            self._idle.put(w)

    @property
    def size(self) -> int:
        return len(self._all)

    def worker_pids(self) -> list[int]:
        """Host pids of the worker launchers (bubblewrap, or the zygote in rlimits mode)."""
        with self._lock:
            return [w.proc.pid for w in self._all.values()]

    def worker_uids(self) -> list[int]:
        """Host uids the workers' programs run as."""
        with self._lock:
            return [w.spec.uid for w in self._all.values()]

    def worker_info(self) -> list[dict[str, Any]]:
        """What each worker's zygote reported when it was ready (seccomp, memory watch, ...)."""
        with self._lock:
            return [dict(w.info) for w in self._all.values()]

    def run(self, code: str, timeout_s: float | None = None) -> SandboxResult:
        """Run ``code`` in an idle worker (waiting for one) under the pool's limits."""
        while True:
            if self._closed:
                return SandboxResult.failure("sandbox pool is closed")
            try:
                worker = self._idle.get(timeout=1.0)
                break
            except queue.Empty:
                continue
        if not worker.alive:  # its bubblewrap died while idle: do not trust what is left
            worker = self._replace(worker)
            if worker is None:
                return SandboxResult.failure("sandbox pool is closed")
        replace = True
        try:
            for attempt in (1, 2):
                try:
                    result, replace = run_on(worker, code, self.limits, timeout_s)
                    return result
                except WorkerGone as err:
                    if attempt == 2:
                        return SandboxResult.failure(f"sandbox worker failed: {err}")
                    log.warning("sandbox worker %d was dead before a run; restarting it", worker.slot)
                    worker = self._replace(worker)
                    if worker is None:
                        return SandboxResult.failure("sandbox pool is closed")
            raise AssertionError("unreachable")
        finally:
            if replace and worker is not None:
                worker = self._replace(worker)
            if worker is not None:
                self._idle.put(worker)

    def run_many(self, codes: list[str], timeout_s: float | None = None) -> list[SandboxResult]:
        """Run ``codes`` across the pool's workers at once; results in order."""
        if len(codes) <= 1:
            return [self.run(c, timeout_s) for c in codes]
        with ThreadPoolExecutor(max_workers=min(self.size, len(codes))) as ex:
            return list(ex.map(lambda c: self.run(c, timeout_s), codes))

    def _replace(self, worker: Worker) -> Worker | None:
        """A fresh worker for ``worker``'s slot; the closed one itself if none will start (so a
        later run fails fast and tries again, instead of waiting forever for a free worker)."""
        worker.close(kill=True)
        if self._closed:
            return None
        for attempt in range(3):
            try:
                fresh = start_worker(self.config, self.mode, worker.slot, spawner=self._spawner)
            except WorkerError as err:
                log.error("sandbox worker %d could not restart (try %d): %s", worker.slot, attempt + 1, err)
                time.sleep(0.1 * (attempt + 1))
                continue
            with self._lock:
                self._all[worker.slot] = fresh
            return fresh
        return worker

    def close(self) -> None:
        """Stop every worker (their sandboxes, and whatever runs in them, go too)."""
        self._closed = True
        with self._lock:
            workers = list(self._all.values())
            self._all.clear()
        for w in workers:
            w.close()
        self._spawner.shutdown(wait=False)

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
