"""Run untrusted Python: each program in a bubblewrap sandbox, forked from a warm zygote.

    from orchestrator.tools.sandbox import run_python
    result = run_python("print(6 * 7)", timeout_s=2.0)
    result.stdout, result.exit_code, result.timed_out, result.limit_hit

The policy writes these programs, so they are hostile by assumption: no network, no host
environment or files, an unprivileged uid, a read-only system, a private /tmp and limits
on CPU, wall time, memory, processes, file size and output. Full isolation is the default
and required: where a layer is missing the sandbox refuses to start, and
``isolation_problem(mode)`` says why in one line, without starting anything (a run's config
check calls it). ``isolation_report()`` says what this machine gave, measured from inside
(see ``docs/sandbox.md``).

Layout: ``config`` (limits, result), ``isolation`` (settings and their check), ``launch``
(bubblewrap command lines), ``zygote`` with ``zygote_memory`` and ``zygote_cleanup`` (run
inside the sandbox), ``pool`` (pre-forked workers), ``probe`` with ``probe_inside``
(measured isolation).
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from orchestrator.tools.sandbox.config import LIMIT_NAMES, SandboxConfig, SandboxLimits, SandboxResult
from orchestrator.tools.sandbox.isolation import ISOLATION_MODES, IsolationUnavailable, isolation_problem
from orchestrator.tools.sandbox.pool import SandboxPool, run_once

__all__ = [
    "ISOLATION_MODES", "LIMIT_NAMES", "IsolationUnavailable", "SandboxConfig", "SandboxLimits", "SandboxPool",
    "SandboxResult", "default_pool", "isolation_problem", "isolation_report", "run_once", "run_python",
]

_default: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool behind :func:`run_python`, started on first use, closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SandboxPool()
            atexit.register(_default.close)
        return _default


def run_python(code: str, timeout_s: float = 5.0) -> SandboxResult:
    """Run ``code`` in a sandbox and return what it printed, how it ended and which limit it hit."""
    return default_pool().run(code, timeout_s=timeout_s)


def isolation_report() -> dict[str, Any]:
    """The default pool's measured isolation (for the W&B config)."""
    return dict(default_pool().isolation)
