"""The console shows the run; everything else goes to the run's log file.

Ray workers do not print: rank 0 sends its step lines, eval lines and progress to the
driver through a :class:`ConsoleChannel` (a Ray queue), and the driver's
:class:`ConsolePrinter` thread writes them with rich, a progress bar for long work.
Library output (Ray's, transformers', warnings) goes to ``<output_dir>/logs/``, where it
can be read later; worker stdout is not forwarded (``log_to_driver=False``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Loggers whose records are the run itself: shown on the console (and kept in the log file).
CONSOLE_LOGGER = "toolrl"


@dataclass(frozen=True)
class Message:
    kind: str  # "line" | "progress_start" | "progress" | "progress_end"
    text: str = ""
    completed: float = 0.0
    total: float = 0.0


class ProgressHandle:
    """A worker's end of one progress bar (sends only when the bar moved)."""

    def __init__(self, channel: "ConsoleChannel", description: str, total: int) -> None:
        self.channel, self.total = channel, total
        self.last_sent = 0.0
        channel._put(Message("progress_start", description, 0, total))

    def advance(self, completed: int, loss: float | None = None) -> None:
        now = time.monotonic()
        if completed >= self.total or now - self.last_sent > 0.5:
            self.last_sent = now
            text = f"loss {loss:.3f}" if loss is not None else ""
            self.channel._put(Message("progress", text, completed, self.total))
        if completed >= self.total:
            self.channel._put(Message("progress_end"))


class ConsoleChannel:
    """Picklable: made on the driver, handed to the workers (and to a sweep's trials)."""

    def __init__(self, prefix: str = "") -> None:
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self.prefix = prefix

    def with_prefix(self, prefix: str) -> "ConsoleChannel":
        other = object.__new__(ConsoleChannel)
        other.queue, other.prefix = self.queue, prefix
        return other

    def _put(self, message: Message) -> None:
        if self.prefix and message.kind == "line":
            message = Message("line", f"[{self.prefix}] {message.text}")
        try:
            self.queue.put_nowait(message)
        except Exception:  # noqa: BLE001 - a full or gone queue must never stop training
            log.debug("console message dropped: %s", message)

    def line(self, text: str) -> None:
        self._put(Message("line", text))

    def progress(self, description: str, total: int) -> ProgressHandle:
        return ProgressHandle(self, description, total)

    def shutdown(self) -> None:
        self.queue.shutdown()


class ConsolePrinter:
    """The driver's thread that prints what the workers send, until :meth:`stop`."""

    def __init__(self, channel: ConsoleChannel) -> None:
        from rich.console import Console

        self.channel = channel
        self.console = Console(soft_wrap=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="toolrl-console", daemon=True)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "ConsolePrinter":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._drain(block=False)
        self._end_progress()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain(block=True)

    def _drain(self, block: bool) -> None:
        from ray.util.queue import Empty

        try:
            messages = [self.channel.queue.get(block=block, timeout=0.5)] if block else []
            messages += self.channel.queue.get_nowait_batch(self.channel.queue.qsize())
        except Empty:
            return
        except Exception:  # noqa: BLE001 - the queue's actor is gone (Ray shut down)
            self._stop.set()
            return
        for message in messages:
            self.show(message)

    def show(self, message: Message) -> None:
        if message.kind == "line":
            (self._progress.console if self._progress else self.console).print(message.text, highlight=False)
        elif message.kind == "progress_start":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._end_progress()
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[note]}"), TimeRemainingColumn(), console=self.console,
                                      transient=False)
            self._progress.start()
            self._task = self._progress.add_task(message.text, total=message.total, note="")
        elif message.kind == "progress" and self._progress is not None:
            self._progress.update(self._task, completed=message.completed, note=message.text)
        elif message.kind == "progress_end":
            self._end_progress()

    def _end_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def step_line(step: int, max_steps: int, metrics: dict[str, float]) -> str:
    """One concise line per step: the numbers a researcher watches."""
    parts = [f"step {step:>4}/{max_steps}"]
    for key, label, fmt in (
        ("env/reward_mean", "reward", "{:.3f}"),
        ("sft/loss", "loss", "{:.3f}"),
        ("eval/accuracy", "eval", "{:.3f}"),
        ("eval/accuracy_greedy", "greedy", "{:.3f}"),
        ("eval/loss", "eval loss", "{:.3f}"),
        ("eval/action_right", "action", "{:.2f}"),
        ("eval/arguments_json", "json", "{:.2f}"),
        ("eval/constrained/action_right", "action (constrained)", "{:.2f}"),
        ("tools/used_frac", "tool", "{:.2f}"),
        ("objective/kl", "kl", "{:.3f}"),
        ("ppo/loss/policy", "pg", "{:+.3f}"),
        ("grpo/loss/policy", "pg", "{:+.3f}"),
        ("time/step_s", "s/step", "{:.2f}"),
    ):
        if key in metrics:
            parts.append(f"{label} {fmt.format(metrics[key])}")
    return " | ".join(parts)


def route_driver_logs(log_file: Path) -> None:
    """The driver's own logging: every record into ``log_file``; records of the toolrl logger also on
    the console. Ray's, transformers' and Python's warnings stop writing to the terminal."""
    import sys
    import warnings

    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):  # an earlier run's log file in this process
            old.close()
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    for name in ("ray", "ray.train", "ray.tune", "ray.data", "transformers", "datasets", "wandb"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    quiet_progress_bars()
    ours = logging.getLogger(CONSOLE_LOGGER)
    ours.setLevel(logging.INFO)
    for old in list(ours.handlers):
        ours.removeHandler(old)
    to_console = logging.StreamHandler(sys.stdout)
    to_console.setFormatter(logging.Formatter("%(message)s"))
    ours.addHandler(to_console)


def quiet_progress_bars() -> None:
    """No tqdm bars from libraries (saving shards, downloading, building datasets): the run's own
    progress bars are the ones the console shows."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
