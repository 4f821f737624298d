"""Where a run is shown and recorded: the console, metrics.jsonl, W&B."""

from orchestrator.tracking.tracker import Tracker, new_run_id, resolve_wandb_mode

__all__ = ["Tracker", "new_run_id", "resolve_wandb_mode"]
