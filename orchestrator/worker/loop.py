"""The loop every Ray Train worker runs: batch -> prepare -> update -> eval -> checkpoint -> report.

Each worker draws its share of the step's batch (rollouts of the policy, or the task's
demonstrations), and the algorithm turns it into gradient steps that DDP keeps in sync.
Rank 0 tracks (W&B, metrics.jsonl, the console) and writes checkpoints; every rank reports
to Ray Train, so its controller can restart the group from the last checkpoint after a
worker dies. The loop knows algorithms only through :class:`orchestrator.algos.Algorithm`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from orchestrator.algos import build_algorithm
from orchestrator.distributed import all_sum, barrier, param_digest_spread
from orchestrator.models.loading import exportable, load_causal_lm, load_weights, prepare_for_training
from orchestrator.rollout.environment import TextEnvironment, episode_stats, stats_to_metrics
from orchestrator.task import build_task
from orchestrator.tracking.console import ConsoleChannel, step_line
from orchestrator.tracking.tracker import Tracker
from orchestrator.worker.callbacks import StepContext, load_callbacks
from orchestrator.worker.checkpoint import TrainState, load_state, open_checkpoint, rng_states, save_checkpoint, set_rng_states
from orchestrator.worker.context import WorkerContext, start_worker
from orchestrator.worker.evaluation import evaluate
from orchestrator.worker.sources import DemonstrationSource, RolloutSource

log = logging.getLogger(__name__)


@dataclass
class WorkerPayload:
    """What the driver hands every worker (picklable)."""

    cfg: Any  # the typed RunConfig
    derived: Any  # orchestrator.config.derive.Derived
    model_path: str
    router: Any  # the tool router (None for a task without tools)
    run_id: str
    run_name: str
    resume_from: str | None
    console: ConsoleChannel | None
    # The tiny model's warm start: no tracking, no evaluation, only the final model is reported.
    warm_start: bool = False


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train's ``train_loop_per_worker``: ``config["payload"]`` is the :class:`WorkerPayload`."""
    import ray.train
    from ray.train import Checkpoint

    payload: WorkerPayload = config["payload"]
    cfg, derived = payload.cfg, payload.derived
    ctx: WorkerContext = start_worker(cfg.trainer, derived, cfg.output_dir, quiet=payload.warm_start)
    task = build_task(cfg.task)
    tokenizer, lm = load_causal_lm(payload.model_path, rope_scaling=cfg.model.rope_scaling)
    lm = prepare_for_training(lm, cfg.model).to(ctx.device)
    algo = build_algorithm(cfg.algo, lm, tokenizer, ctx, derived, cfg)
    env = TextEnvironment(tokenizer, payload.router, task.reward, cfg.task.env,
                          lean_decoder=cfg.trainer.lean_decoder) if task.has_rollouts and not payload.warm_start else None
    few_shot = bool(cfg.model.few_shot)

    # --- resume: Ray Train's own checkpoint (a restart after a failure) wins; else trainer.resume's folder
    step, run_id, last_metrics = 0, payload.run_id, {}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and payload.resume_from:
        checkpoint = open_checkpoint(payload.resume_from)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_state(Path(folder))
            _, saved = load_causal_lm(str(Path(folder) / "model"), rope_scaling=cfg.model.rope_scaling)
            load_weights(algo.policy, saved)
            algo.load_state_dict(state.algo)
            set_rng_states(state.rng)
            step, run_id, last_metrics = state.step, state.run_id, state.metrics
        log.info("[rank %d] resumed from checkpoint at step %d", ctx.rank, step)

    tr = cfg.trainer
    if algo.learns_from == "demonstrations":
        demos = task.demonstrations(derived.num_demos, _demo_rng(derived.seed))
        source: Any = DemonstrationSource(demos, tokenizer, derived.max_length, derived.seed, ctx.rank, ctx.world_size,
                                          derived.episodes_per_worker, group_by_length=derived.group_by_length)
    else:
        source = RolloutSource(env, task, derived.seed, ctx.rank, derived.prompts_per_worker, algo.samples_per_prompt,
                               tr.temperature, few_shot, start_step=step)
    tracker = Tracker(cfg.logger, cfg.output_dir, run_id, payload.run_name, cfg.experiment_name, derived.resolved,
                      enabled=ctx.rank == 0 and not payload.warm_start)
    # Rows past the checkpoint are recomputed now; with no checkpoint every row is.
    tracker.rewind(step if checkpoint is not None else -1)
    callbacks = load_callbacks(list(tr.callbacks))
    console = payload.console if ctx.rank == 0 else None
    timings = {"rollout": 0.0, "tools": 0.0, "update": 0.0, "eval": 0.0}
    max_steps = derived.max_steps

    def run_eval(at_step: int) -> dict[str, float]:
        if env is None:
            if payload.warm_start or ctx.rank != 0:
                return {}
            t0 = time.perf_counter()
            metrics = task.evaluate_policy(algo.policy, tokenizer, derived.seed, at_step)
            timings["eval"] += time.perf_counter() - t0
            return metrics
        t0 = time.perf_counter()
        samples = tr.final_eval_samples if at_step == max_steps else 1
        result = evaluate(env, algo.policy, task, few_shot, derived.seed, at_step, samples)
        timings["eval"] += time.perf_counter() - t0
        tracker.log_episodes(result.sampled, result.failures, at_step)
        return result.metrics

    def report(metrics: dict[str, float], at_step: int, save: bool) -> None:
        """Every rank reports; rank 0 attaches the checkpoint (Ray Train keeps the newest N)."""
        with tempfile.TemporaryDirectory() as tmp:
            attached = None
            if save and ctx.rank == 0:
                save_checkpoint(Path(tmp), exportable(algo.policy), tokenizer,
                                TrainState(at_step, run_id, algo.state_dict(), rng_states(), metrics))
                attached = Checkpoint.from_directory(tmp)
            ray.train.report({**metrics, "step": at_step}, checkpoint=attached)
        if save:
            tracker.commit()  # the rows this checkpoint covers can no longer be redone

    if step == 0 and not payload.warm_start:
        metrics = run_eval(0)
        tracker.log(metrics, 0)
        if console:
            console.line(step_line(0, max_steps, metrics) + "  (start)")
        last_metrics = metrics

    progress = console.progress("warm start (SFT)", max_steps) if console and payload.warm_start else None
    while step < max_steps:
        t_step = time.perf_counter()
        for callback in callbacks:
            callback.on_step_start(StepContext(ctx.rank, ctx.world_size, step, resumed=checkpoint is not None,
                                                 seed=derived.seed))
        t0 = time.perf_counter()
        tools_before = env.timings.tools_s if env is not None else 0.0
        episodes = source.batch(algo.policy, step)
        batch_s = time.perf_counter() - t0
        tools_s = (env.timings.tools_s if env is not None else 0.0) - tools_before
        experience = algo.prepare(episodes)
        metrics = algo.update(experience, step)
        timings["update"] += metrics.get("time/update_s", 0.0)
        timings["tools"] += tools_s
        timings["rollout"] += batch_s - tools_s
        step += 1

        if algo.learns_from == "rollouts":
            stats = episode_stats(episodes)
            keys = sorted(stats)
            metrics.update(stats_to_metrics(dict(zip(keys, all_sum([stats[k] for k in keys])))))
            metrics["time/rollout_s"] = batch_s
            metrics["perf/tokens_per_s"] = ctx.world_size * stats["model_tokens"] / max(batch_s, 1e-9)
        due_eval = not payload.warm_start and (step == max_steps or (tr.eval_every and step % tr.eval_every == 0))
        if due_eval:
            metrics.update(run_eval(step))
            if hasattr(algo, "evaluate") and task.heldout_demonstrations() is not None:
                metrics.update(algo.evaluate(_heldout(task, tokenizer, derived, ctx)))
        metrics["time/step_s"] = time.perf_counter() - t_step
        tracker.log(metrics, step)
        if console and (step % tr.log_every == 0 or due_eval) and not payload.warm_start:
            console.line(step_line(step, max_steps, metrics))
        if progress:
            progress.advance(step, metrics.get("sft/loss"))
        last_metrics = {**last_metrics, **metrics}
        due_ckpt = step == max_steps or (tr.checkpoint_every and step % tr.checkpoint_every == 0 and not payload.warm_start)
        if due_ckpt or due_eval:
            last_metrics["dist/world_size"] = ctx.world_size
            last_metrics["dist/param_digest_spread"] = param_digest_spread(algo.policy)
            report({k: v for k, v in last_metrics.items() if not k.startswith("time/")}, step, save=bool(due_ckpt))

    totals = {f"time/total_{k}_s": v for k, v in timings.items()}
    tracker.log(totals, step)
    tracker.summary({**last_metrics, **totals})
    tracker.finish()
    barrier()


def _demo_rng(seed: int) -> Any:
    import random

    from orchestrator.seeding import derived_seed

    return random.Random(derived_seed(seed, "demonstrations"))


def _heldout(task: Any, tokenizer: Any, derived: Any, ctx: WorkerContext) -> list[Any]:
    from orchestrator.rollout.demonstration import to_episodes

    demos = task.heldout_demonstrations()[ctx.rank :: ctx.world_size]
    return to_episodes(tokenizer, demos, derived.max_length)
