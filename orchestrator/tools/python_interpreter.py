"""The PythonInterpreter tool: runs the model's program in the sandbox, answers with its output.

Config (``conf/tools``), built inside a Ray tool actor::

    _target_: orchestrator.tools.python_interpreter.PythonInterpreter
    name: PythonInterpreter
    timeout_s: 5.0
    max_output_chars: 1000
    isolation: full        # or userns | rlimits | none, named explicitly (docs/sandbox.md)

The sandbox pool (pre-forked workers) is started on the first call, in the actor's own
process, and stopped when that process exits. The isolation is checked when the tool is
built: where ``isolation`` cannot be given, construction raises
:class:`IsolationUnavailable` with one line saying what is missing. A program that fails is still an answer:
the model sees what it printed, why it stopped (which limit, or the exit code) and the
tail of its traceback, so it can fix the program. Only a failure of the sandbox itself
raises :class:`ToolError`.
"""

from __future__ import annotations

import atexit
import logging
import re
import signal
import threading
from typing import Any, Sequence

from orchestrator.tools.base import ToolError
from orchestrator.tools.sandbox import (
    IsolationUnavailable, SandboxConfig, SandboxLimits, SandboxPool, SandboxResult, isolation_problem,
)

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_+-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


def strip_fences(query: str) -> str:
    """The program inside a Markdown code fence, or ``query`` as it is."""
    match = _FENCE.match(query)
    return match.group(1) if match else query


def _clip(text: str, limit: int, keep: str = "head") -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep == "tail":  # start at a line boundary: a traceback's lines are read whole
        tail = text[-limit:]
        newline = tail.find("\n")
        tail = tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail
        return f"[...{len(text) - len(tail)} characters cut]\n" + tail
    return text[:limit] + f"\n[...{cut} characters cut]"


class PythonInterpreter:
    """Tool protocol implementation (``name``, ``description``, ``call``, ``call_batch``)."""

    def __init__(
        self,
        name: str = "PythonInterpreter",
        description: str = "Runs a Python 3 program and returns what it printed (use print). "
        "Standard library only; no network, no files outside a private temporary directory.",
        timeout_s: float = 5.0,
        max_output_chars: int = 1000,
        memory_mb: int = 512,
        max_processes: int = 8,
        file_size_mb: int = 16,
        num_workers: int = 0,
        isolation: str = "full",
        preload: Sequence[str] | None = None,
        python: str | None = None,
    ) -> None:
        if max_output_chars < 50:
            raise ValueError(f"max_output_chars must be >= 50, got {max_output_chars}")
        self.name = name
        self.description = description
        self.timeout_s = float(timeout_s)
        self.max_output_chars = int(max_output_chars)
        self.limits = SandboxLimits(
            timeout_s=self.timeout_s,
            memory_bytes=int(memory_mb) << 20,
            max_processes=int(max_processes),
            file_size_bytes=int(file_size_mb) << 20,
            # The model sees max_output_chars at most; a little more lets us say how much was cut.
            max_stdout_bytes=max(4 * self.max_output_chars, 4096),
        )
        config_kwargs: dict[str, Any] = {"num_workers": int(num_workers), "isolation": str(isolation)}
        if preload is not None:
            config_kwargs["preload"] = tuple(str(m) for m in preload)
        if python is not None:
            config_kwargs["python"] = str(python)
        self.config = SandboxConfig(**config_kwargs)
        problem = isolation_problem(self.config.isolation)
        if problem is not None:
            raise IsolationUnavailable(problem)
        self._pool: SandboxPool | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> SandboxPool:
        """The sandbox pool, started on first use (in the process that calls the tool)."""
        with self._lock:
            if self._pool is None:
                self._pool = SandboxPool(self.config, self.limits)
                atexit.register(self.close)
            return self._pool

    @property
    def isolation(self) -> dict[str, Any]:
        """Measured isolation of this tool's sandbox (starts the pool); for the W&B config."""
        return dict(self.pool.isolation)

    def call(self, query: str) -> str:
        result = self.pool.run(strip_fences(query))
        if result.error is not None and result.limit_hit is None:
            raise ToolError(result.error)
        return self.format(result)

    def call_batch(self, queries: list[str]) -> list[str]:
        """All programs at once across the pool's workers. Never raises: one string per query."""
        results = self.pool.run_many([strip_fences(q) for q in queries])
        return [self.format(r) if r.error is None or r.limit_hit else f"Error: {r.error}" for r in results]

    def format(self, result: SandboxResult) -> str:
        """What the model sees: the output, and for a failed run why it failed."""
        limit = self.max_output_chars
        if result.ok:
            return _clip(result.stdout, limit) if result.stdout else "(no output: print the result)"
        reason = self._reason(result)
        stdout = _clip(result.stdout, limit // 2) if result.stdout else ""
        budget = max(0, limit - len(stdout) - len(reason) - 10)
        stderr = _clip(result.stderr.strip(), budget, keep="tail") if budget and result.stderr.strip() else ""
        return "\n".join(part for part in (stdout.rstrip("\n"), f"Error: {reason}", stderr) if part)

    def _reason(self, result: SandboxResult) -> str:
        limits = self.limits
        match result.limit_hit:
            case "wall_time":
                return f"the program ran longer than {self.timeout_s:g} s and was stopped"
            case "cpu_time":
                return f"the program used more than {limits.cpu_seconds()} s of CPU time and was stopped"
            case "memory":
                return f"the program ran out of memory (limit {limits.memory_bytes >> 20} MiB)"
            case "processes":
                return f"the program hit the limit of {limits.max_processes} processes and threads"
            case "file_size":
                return f"the program wrote a file larger than {limits.file_size_bytes >> 20} MiB"
            case "disk":
                return "the program filled its temporary directory"
            case "output":
                return f"the program printed more than {limits.max_stdout_bytes} bytes and was stopped"
        if result.exit_code is not None and result.exit_code < 0:
            try:
                sig = signal.Signals(-result.exit_code).name
            except ValueError:
                sig = f"signal {-result.exit_code}"
            return f"the program was killed by {sig}"
        return f"the program exited with code {result.exit_code}"

    def close(self) -> None:
        """Stop the sandbox workers (also done at interpreter exit)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
