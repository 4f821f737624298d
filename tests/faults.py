"""Fault injection for the tests: a worker-loop callback that SIGKILLs one worker at one step.

Used through the config, as any callback (``trainer.callbacks``); the production loop knows
nothing of it. It reaches into Ray Train's internals to wait for the controller to collect
the worker's last report, which only a test needs.
"""

from __future__ import annotations

import logging
import os
import signal
import time

log = logging.getLogger(__name__)


def wait_until_reports_collected(timeout_s: float = 60.0) -> None:
    """Let Ray Train's controller collect this worker's last report (and its checkpoint) first.

    A report waits in the worker's result queue until the controller's next poll, up to
    ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s) later. A crash inside that window loses the
    checkpoint, which Ray allows; but an injected kill must hit the same point on a fast machine
    and a slow one, or a test that expects a resume from step N sees a restart from 0 that is
    killed again at the same step until the failure budget is spent.
    """
    try:  # Ray Train V2's internal queue; its consumer calls task_done() once it took a report
        from ray.train.v2._internal.execution.context import get_train_context

        queue = get_train_context().get_result_queue()
    except Exception:  # another Ray version: wait out two poll intervals instead
        time.sleep(2 * float(os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", 2.0)) + 1.0)
        return
    deadline = time.monotonic() + timeout_s
    while queue.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.05)


class KillRankAtStep:
    """SIGKILL worker ``rank`` once, at the start of ``step``, on an attempt that did not resume
    (in the run of ``seed`` only, when given: one trial of a sweep)."""

    def __init__(self, rank: int = 0, step: int = 1, seed: int | None = None) -> None:
        self.rank, self.step, self.seed = rank, step, seed

    def on_step_start(self, ctx) -> None:
        if self.seed is not None and ctx.seed != self.seed:
            return
        if ctx.rank == self.rank and ctx.step == self.step and not ctx.resumed:
            wait_until_reports_collected()
            log.warning("[rank %d] KillRankAtStep: SIGKILL at step %d", ctx.rank, ctx.step)
            os.kill(os.getpid(), signal.SIGKILL)


def kill_override(rank: int, step: int, seed: int | None = None) -> str:
    """The command-line override that installs the callback."""
    only = "" if seed is None else f",seed:{seed}"
    return f"trainer.callbacks=[{{_target_:tests.faults.KillRankAtStep,rank:{rank},step:{step}{only}}}]"
