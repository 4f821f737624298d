"""Where metrics go: metrics.jsonl at once, W&B (online with a key, offline without) at checkpoints.

Only the rank-0 worker tracks. The W&B run id is chosen by the driver and kept in every
checkpoint, so a restarted or resumed run continues the same W&B run. A restart redoes the
steps after its checkpoint; W&B refuses steps that go backwards, so rows are sent to W&B
only once a checkpoint covers them (:meth:`Tracker.commit`): W&B and metrics.jsonl then
hold the same rows, whatever crashed in between.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from orchestrator.rollout.episode import Episode

log = logging.getLogger(__name__)


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits), chosen before any worker starts."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def resolve_wandb_mode(requested: str) -> str:
    """``auto``: WANDB_MODE if set, else online with WANDB_API_KEY and offline without."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class Tracker:
    def __init__(self, logger_cfg: Any, output_dir: str | Path, run_id: str, run_name: str, group: str,
                 config: dict[str, Any], enabled: bool = True) -> None:
        self.enabled = enabled
        self.output_dir = Path(output_dir)
        self.metrics_path = self.output_dir / "metrics.jsonl"
        self.num_sample_episodes = int(logger_cfg.num_sample_episodes)
        self.run = None
        self.pending: list[tuple[int, dict[str, Any]]] = []  # rows W&B has not received yet
        self.started = time.perf_counter()
        if not enabled:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if logger_cfg.name == "wandb":
            self.run = self._init_wandb(logger_cfg, run_id, run_name, group, config)

    def _init_wandb(self, logger_cfg: Any, run_id: str, run_name: str, group: str, config: dict[str, Any]) -> Any:
        import wandb

        # A driver that already used W&B exports WANDB_SERVICE, and Ray workers inherit it: they would
        # share the driver's wandb-core, where a SIGKILLed worker's run stays open and its restart is
        # refused ("run ID ... is in use"). A worker's own service dies with it.
        os.environ.pop("WANDB_SERVICE", None)
        mode = resolve_wandb_mode(logger_cfg.mode)
        if mode == "disabled":
            return None
        kwargs = dict(project=logger_cfg.project, entity=logger_cfg.entity, group=group, name=run_name, id=run_id,
                      resume="allow", config=config, tags=list(logger_cfg.tags or []), dir=str(self.output_dir))
        try:
            run = wandb.init(mode=mode, **kwargs)
        except Exception as err:  # noqa: BLE001 - no network must never end a run
            if mode == "offline":
                raise
            log.warning("W&B online init failed (%s); logging offline instead", err)
            run = wandb.init(mode="offline", **kwargs)
        log.info("W&B run %s (%s mode) in %s", run.id, mode, run.dir)
        return run

    def rewind(self, step: int) -> None:
        """Drop rows past ``step`` from metrics.jsonl: a restart recomputes them."""
        if not self.enabled or not self.metrics_path.exists():
            return
        rows = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("step", 0) <= step]
        if len(kept) != len(rows):
            tmp = self.metrics_path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, self.metrics_path)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.perf_counter() - self.started, 3), **metrics}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.run is not None:
            self.pending.append((step, dict(metrics)))

    def commit(self) -> None:
        """Send the rows a checkpoint now covers to W&B (see the module docstring)."""
        if self.run is None:
            return
        for step, metrics in self.pending:
            self.run.log(metrics, step=step)
        self.pending = []

    def log_episodes(self, sample: Sequence[Episode], failures: Sequence[Episode], step: int) -> None:
        """A sample of episodes and every failing one: HTML files beside metrics.jsonl and W&B tables."""
        if not self.enabled:
            return
        folder = self.output_dir / "episodes"
        folder.mkdir(exist_ok=True)
        shown = list(sample)[: self.num_sample_episodes]
        (folder / f"step_{step:06d}.html").write_text("<hr/>".join(ep.to_html() for ep in shown))
        if failures:
            (folder / f"failures_step_{step:06d}.html").write_text(failures_html(failures, step))
        if self.run is not None:
            import wandb

            tables = {"episodes": shown, "eval/failures": list(failures)}
            for name, episodes in tables.items():
                table = wandb.Table(columns=["step", "question", "decoding", "kinds", "reward", "end_reason", "episode"])
                for ep in episodes:
                    table.add_data(step, str(ep.meta.get("question", "")), ep.meta.get("decoding", ""),
                                   json.dumps(ep.meta.get("kinds") or {}), ep.reward, ep.end_reason,
                                   wandb.Html(ep.to_html()))
                self.pending.append((step, {name: table}))

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def finish(self) -> None:
        if self.run is not None:
            self.commit()
            self.run.finish()
            self.run = None


def failures_html(failures: Sequence[Episode], step: int) -> str:
    """Every failing eval episode of a step, grouped by decoding, with its kinds."""
    import html

    parts = [f"<h2>Failing held-out episodes at step {step} ({len(failures)})</h2>"]
    for decoding in ("sampled", "greedy"):
        chosen = [ep for ep in failures if ep.meta.get("decoding", "sampled") == decoding]
        if not chosen:
            continue
        parts.append(f"<h3>{decoding}: {len(chosen)}</h3>")
        for ep in chosen:
            kinds = ", ".join(f"{k}={v}" for k, v in (ep.meta.get("kinds") or {}).items())
            parts.append(f"<p><b>{html.escape(str(ep.meta.get('question', '')))}</b> "
                         f"answer={html.escape(str(ep.meta.get('answer', '')))} {html.escape(kinds)}</p>{ep.to_html()}")
    return "\n".join(parts)
