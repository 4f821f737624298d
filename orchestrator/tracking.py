"""Where metrics go: W&B (online with a key, offline without), metrics.jsonl, the console.

Only the rank-0 worker tracks. The W&B run id is chosen by the driver and kept in every
checkpoint, so a restarted or resumed run continues the same W&B run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from orchestrator.episode import Episode

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
    def __init__(
        self,
        logger_cfg: Any,
        output_dir: str | Path,
        run_id: str,
        run_name: str,
        group: str,
        config: dict[str, Any],
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.output_dir = Path(output_dir)
        self.metrics_path = self.output_dir / "metrics.jsonl"
        self.num_sample_episodes = int(logger_cfg.num_sample_episodes)
        self.run = None
        self.started = time.perf_counter()
        if not enabled:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if logger_cfg.name == "wandb":
            self.run = self._init_wandb(logger_cfg, run_id, run_name, group, config)

    def _init_wandb(self, logger_cfg: Any, run_id: str, run_name: str, group: str, config: dict[str, Any]) -> Any:
        import wandb

        mode = resolve_wandb_mode(logger_cfg.mode)
        if mode == "disabled":
            return None
        kwargs = dict(
            project=logger_cfg.project,
            entity=logger_cfg.entity,
            group=group,
            name=run_name,
            id=run_id,
            resume="allow",
            config=config,
            tags=list(logger_cfg.tags or []),
            dir=str(self.output_dir),
        )
        try:
            run = wandb.init(mode=mode, **kwargs)
        except Exception as err:  # noqa: BLE001 - no network must never end a run
            if mode == "offline":
                raise
            log.warning("W&B online init failed (%s); logging offline instead", err)
            run = wandb.init(mode="offline", **kwargs)
        log.info("W&B run %s (%s mode) in %s", run.id, mode, run.dir)
        return run

    def truncate_after(self, step: int) -> None:
        """Drop rows past ``step`` from metrics.jsonl: a restart recomputes them."""
        if not self.enabled or not self.metrics_path.exists():
            return
        rows = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("step", 0) <= step]
        if len(kept) != len(rows):
            tmp = self.metrics_path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, self.metrics_path)

    def log(self, metrics: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.perf_counter() - self.started, 3), **metrics}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.run is not None:
            self.run.log(metrics, step=step)

    def log_episodes(self, episodes: Sequence[Episode], step: int) -> None:
        """A sample of episodes: an HTML file beside metrics.jsonl and a W&B table."""
        if not self.enabled:
            return
        sample = list(episodes)[: self.num_sample_episodes]
        folder = self.output_dir / "episodes"
        folder.mkdir(exist_ok=True)
        (folder / f"step_{step:06d}.html").write_text("<hr/>".join(ep.to_html() for ep in sample))
        if self.run is not None:
            import wandb

            table = wandb.Table(columns=["step", "question", "reward", "end_reason", "episode"])
            for ep in sample:
                table.add_data(step, str(ep.meta.get("question", "")), ep.reward, ep.end_reason, wandb.Html(ep.to_html()))
            self.run.log({"episodes": table}, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def console_line(step: int, max_steps: int, metrics: dict[str, float]) -> str:
    """One concise line per step: the numbers a researcher watches."""
    parts = [f"step {step:>4}/{max_steps}"]
    for key, label, fmt in (
        ("env/reward_mean", "reward", "{:.3f}"),
        ("eval/accuracy", "eval", "{:.3f}"),
        ("eval/accuracy_greedy", "greedy", "{:.3f}"),
        ("tools/used_frac", "tool", "{:.2f}"),
        ("objective/kl", "kl", "{:.3f}"),
        ("ppo/loss/policy", "pg", "{:+.3f}"),
        ("time/step_s", "s/step", "{:.2f}"),
    ):
        if key in metrics:
            parts.append(f"{label} {fmt.format(metrics[key])}")
    return " | ".join(parts)
