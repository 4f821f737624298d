"""What a sandboxed run may use (:class:`SandboxLimits`, :class:`SandboxConfig`) and what it gave back.

Limits are per program run. Most are kernel rlimits set in the forked child, so they are
per *process*; memory is bounded twice: ``memory_bytes`` of address space per process and
``memory_bytes`` of resident memory for all of the run's processes together (the zygote
adds them up while the run lasts). ``docs/sandbox.md`` says what that bounds and what not.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.tools.sandbox.isolation import mode_problem

# Names of the limits a run can hit, as reported in ``SandboxResult.limit_hit``.
LIMIT_NAMES = ("wall_time", "cpu_time", "memory", "processes", "file_size", "disk", "output")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run resource limits. Defaults fit short GSM8K-style programs, not number crunching."""

    # Seconds of wall-clock time before every process of the run is killed.
    timeout_s: float = 5.0
    # Seconds of CPU time per process (RLIMIT_CPU); None: the wall timeout rounded up.
    cpu_s: int | None = None
    # Address space per process in bytes (RLIMIT_AS), and resident memory of all the run's
    # processes together (killed beyond it). 512 MiB runs numpy; 10 GB asks fail.
    memory_bytes: int = 512 << 20
    # Tasks (processes + threads) the run's uid may hold (RLIMIT_NPROC), the zygote included.
    max_processes: int = 8
    # Largest file a process may write, in bytes (RLIMIT_FSIZE).
    file_size_bytes: int = 16 << 20
    # Open file descriptors per process (RLIMIT_NOFILE).
    max_open_files: int = 64
    # Bytes of stdout kept; a program that prints more is killed (limit "output").
    max_stdout_bytes: int = 1 << 20
    # Bytes of stderr kept (the tail: a traceback's last lines say what went wrong).
    max_stderr_bytes: int = 64 << 10

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        for name in ("memory_bytes", "max_processes", "file_size_bytes", "max_open_files", "max_stdout_bytes", "max_stderr_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_processes < 2:
            raise ValueError("max_processes must be >= 2: the zygote and the program both count")

    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else max(1, math.ceil(self.timeout_s))

    def request_fields(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The limits as the zygote reads them from a request."""
        fields = asdict(self)
        fields["timeout_s"] = float(timeout_s if timeout_s is not None else self.timeout_s)
        fields["cpu_s"] = self.cpu_s if self.cpu_s is not None else max(1, math.ceil(fields["timeout_s"]))
        return fields


@dataclass(frozen=True)
class SandboxConfig:
    """How sandbox workers are started. One config, one pool of identical workers."""

    # Pre-forked workers (each one sandbox); 0: one per CPU this process may use, at most 8.
    num_workers: int = 0
    # Interpreter run inside the sandbox; its install tree is bound read-only (nothing else
    # from the host's home or the project is). Default: the interpreter running this code.
    python: str = field(default_factory=lambda: sys.executable)
    # Modules the zygote imports once, so each forked run finds them loaded.
    preload: tuple[str, ...] = ("math", "fractions", "decimal", "itertools", "functools", "collections", "re", "datetime", "statistics", "json", "random")
    # Size of the private /tmp (tmpfs) in bytes; filling it gives "disk" errors, not host damage.
    tmp_size_bytes: int = 64 << 20
    # Size of the private /dev/shm (tmpfs) in bytes: POSIX semaphores for multiprocessing.
    shm_size_bytes: int = 16 << 20
    # First uid for workers when started as root: worker i runs as uid_base + i (distinct uids
    # so RLIMIT_NPROC counts each worker's processes apart). Unused by real accounts.
    uid_base: int = 3_000_000_000
    # Extra host paths bound read-only at the same place (e.g. a venv outside the prefix).
    extra_ro_binds: tuple[str, ...] = ()
    # "full" (bubblewrap, every layer; refuses to start without one), or a weaker setting
    # that must be named: "userns", "rlimits", "none" (isolation.py, docs/sandbox.md).
    isolation: str = "full"
    # Load the seccomp deny list (seccomp.py) in every worker. Off only to measure its cost.
    seccomp: bool = True
    # Files allowed in /tmp after a run before the worker is recycled instead of wiped.
    max_tmp_entries: int = 10_000
    # Seconds a worker may take to start (bubblewrap + interpreter + preload).
    start_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        problem = mode_problem(self.isolation)
        if problem is not None:
            raise ValueError(problem)
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if not 0 < self.uid_base < 2**32 - 1024:
            raise ValueError(f"uid_base must be a positive 32-bit uid, got {self.uid_base}")

    def workers(self) -> int:
        if self.num_workers:
            return self.num_workers
        return max(1, min(8, len(os.sched_getaffinity(0))))


@dataclass(frozen=True)
class SandboxResult:
    """What one program did. ``exit_code`` is negative for a signal (as in :mod:`subprocess`).

    ``limit_hit`` names the limit that ended or broke the run (one of ``LIMIT_NAMES``), or
    None. ``error`` is set when the sandbox itself failed (a worker crashed or could not
    start); the program's own failures show in ``exit_code`` and ``stderr`` instead.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool = False
    limit_hit: str | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.limit_hit is None and self.error is None

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> "SandboxResult":
        return cls(
            stdout=reply.get("stdout", ""),
            stderr=reply.get("stderr", ""),
            exit_code=reply.get("exit_code"),
            timed_out=bool(reply.get("timed_out", False)),
            limit_hit=reply.get("limit_hit"),
            wall_s=float(reply.get("wall_s", 0.0)),
            cpu_s=float(reply.get("cpu_s", 0.0)),
        )

    @classmethod
    def failure(cls, message: str, *, timed_out: bool = False, limit_hit: str | None = None) -> "SandboxResult":
        return cls(stdout="", stderr="", exit_code=None, timed_out=timed_out, limit_hit=limit_hit, error=message)
