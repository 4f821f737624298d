"""The loop each Ray Train worker runs: rollout -> reward -> PPO update -> eval -> checkpoint.

Each worker rolls out ``batch_size / num_workers`` episodes of its own problem stream
and joins the update through DDP. Rank 0 tracks (W&B, metrics.jsonl, console) and
writes checkpoints; every rank reports to Ray Train so the controller can restart the
group from the last checkpoint after a worker dies.

Randomness is derived from (seed, rank, step), so a resumed run draws the same problems
and samples that the interrupted run would have drawn.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import hydra.utils
import torch
from omegaconf import OmegaConf

from orchestrator.checkpoint import TrainState, load_state, rng_states, save_checkpoint, set_rng_states
from orchestrator.distributed import all_mean, all_sum, barrier, param_digest_spread, world
from orchestrator.env import EnvConfig, TextEnvironment, episode_metrics
from orchestrator.learner import PPOLearner, unwrap
from orchestrator.models.loading import load_causal_lm
from orchestrator.models.policy import PolicyWithValue
from orchestrator.ppo import PPOConfig
from orchestrator.sampler import SamplingParams
from orchestrator.task import Task, problem_meta
from orchestrator.tracking import Tracker, console_line

log = logging.getLogger("orchestrator")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes (unlike hash())."""
    value = 0x9E3779B97F4A7C15
    for p in parts:
        value = (value ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
    return value >> 1


def evaluate(env: TextEnvironment, model: Any, task: Task, few_shot: bool, seed: int, step: int) -> tuple[dict[str, float], list]:
    """Held-out accuracy, sampled at temperature 1 and greedy; the set is split over workers."""
    rank, size = world()
    problems = task.eval_problems()[rank::size]
    prompts = [task.prompt(p, few_shot) for p in problems]
    metas = [problem_meta(p) for p in problems]
    model.eval()
    gen = torch.Generator().manual_seed(derived_seed(seed, 1, step))
    sampled = env.rollout(model, prompts, metas, SamplingParams(temperature=1.0), gen)
    greedy = env.rollout(model, prompts, metas, SamplingParams(temperature=0.0), gen)
    sums = all_sum([sum(e.reward for e in sampled), sum(e.reward for e in greedy), len(sampled),
                    sum(e.num_calls > 0 for e in sampled)])
    n = max(sums[2], 1)
    return {"eval/accuracy": sums[0] / n, "eval/accuracy_greedy": sums[1] / n, "eval/tool_used_frac": sums[3] / n}, sampled


def wait_until_reports_collected(timeout_s: float = 60.0) -> None:
    """Fault injection only: let Ray Train's controller collect this worker's last report first.

    A report (and the checkpoint in it) waits in the worker's result queue until the controller's
    next poll, up to ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s) later. A crash inside that window
    loses the checkpoint, which Ray allows; but an injected kill must hit the same point on a fast
    machine and a slow one, or a test that expects a resume from step N sees a restart from 0 that
    is killed again at the same step until the failure budget is spent.
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


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    from ray.train import Checkpoint

    cfg = OmegaConf.create(config["cfg"])
    tr = cfg.trainer
    ctx = ray.train.get_context()
    rank, size = ctx.get_world_rank(), ctx.get_world_size()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Oversubscribed threads thrash on a busy node: default to the CPUs this worker reserved.
    threads = tr.threads_per_worker or max(1, int(tr.cpus_per_worker or (os.cpu_count() or 1) // max(ctx.get_local_world_size(), 1)))
    torch.set_num_threads(int(threads))
    device = ray.train.torch.get_device() if tr.use_gpu else torch.device("cpu")

    # --- build: task, model, reference, learner, environment ---------------------------
    task: Task = hydra.utils.instantiate(cfg.task.spec)
    tool_names = [t["name"] for t in task.tools()]
    tokenizer, lm = load_causal_lm(config["model_path"], cfg.model.dtype, tool_names)
    ref_model = copy.deepcopy(lm).to(device)
    torch.manual_seed(derived_seed(cfg.seed, 2))  # the value head: same on every rank, new per seed
    policy = PolicyWithValue(lm).to(device)
    if size > 1:
        policy = ray.train.torch.prepare_model(policy, move_to_device=False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ppo_cfg = {k: v for k, v in cfg.algo.items() if k != "name"}
    ppo_cfg["minibatch_size"] = cfg.algo.minibatch_size // size  # algo counts over all workers; DDP averages
    learner = PPOLearner(policy, ref_model, PPOConfig(**ppo_cfg),
                         pad_id, device, generator=torch.Generator())
    env = TextEnvironment(tokenizer, config["router"], task.reward, EnvConfig(**cfg.task.env),
                          lean_decoder=bool(tr.lean_decoder))

    # --- resume: Ray Train's own checkpoint (after a failure) or trainer.resume -------
    step, run_id, last_metrics = 0, config["run_id"], {}
    # Ray Train's own checkpoint (a restart after a failure) wins; else trainer.resume's folder.
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and config.get("resume_from"):
        checkpoint = Checkpoint.from_directory(config["resume_from"])
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            folder = Path(folder)
            state = load_state(folder)
            fresh = PolicyWithValue(load_causal_lm(str(folder / "model"), cfg.model.dtype)[1])
            unwrap(policy).lm.load_state_dict(fresh.lm.state_dict())
            unwrap(policy).v_head.load_state_dict(torch.load(folder / "value_head.pt"))
            learner.load_state_dict(state.learner)
            set_rng_states(state.rng)
            step, run_id, last_metrics = state.step, state.run_id, state.metrics
        log.info("[rank %d] resumed from checkpoint at step %d", rank, step)

    # A driver that already used W&B exports WANDB_SERVICE, and Ray workers inherit it: they
    # would then share the driver's wandb-core, where a SIGKILLed worker's run stays open and
    # its restart is refused ("run ID ... is in use"). A worker's own service dies with it.
    os.environ.pop("WANDB_SERVICE", None)
    tracker = Tracker(cfg.logger, cfg.output_dir, run_id, config["run_name"], cfg.experiment_name,
                      config["cfg"], enabled=rank == 0)
    # Rows past the checkpoint are recomputed now; with no checkpoint every row is (a restart
    # before the first checkpoint would otherwise log its step-0 evaluation twice).
    tracker.truncate_after(step if checkpoint is not None else -1)
    per_worker = tr.batch_size // size
    stream = task.train_problems(derived_seed(cfg.seed, 3, rank))
    stream = itertools.islice(stream, step * per_worker, None)  # same problems as an uninterrupted run
    sampler_gen = torch.Generator()
    temp = SamplingParams(temperature=tr.temperature)
    few_shot = bool(cfg.model.few_shot)
    timings = {"rollout": 0.0, "tools": 0.0, "update": 0.0, "eval": 0.0, "logging": 0.0}

    def run_eval(at_step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        metrics, sample = evaluate(env, unwrap(policy).lm, task, few_shot, cfg.seed, at_step)
        timings["eval"] += time.perf_counter() - t0
        if rank == 0:
            tracker.log_episodes(sample, at_step)
        return metrics

    def report(metrics: dict[str, float], at_step: int, save: bool) -> None:
        """Every rank reports; rank 0 attaches the checkpoint (Ray Train keeps the newest N)."""
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if save and rank == 0:
                state = TrainState(at_step, run_id, learner.state_dict(), rng_states(), metrics)
                save_checkpoint(Path(tmp), unwrap(policy), tokenizer, state)
                ckpt = Checkpoint.from_directory(tmp)
            ray.train.report({**metrics, "step": at_step}, checkpoint=ckpt)

    if step == 0:
        metrics = run_eval(0)
        if rank == 0:
            tracker.log(metrics, 0)
            log.info(console_line(0, tr.max_steps, metrics) + "  (warm start)")
        last_metrics = metrics

    while step < tr.max_steps:
        t_step = time.perf_counter()
        if tr.kill_rank_at_step is not None and rank == tr.kill_rank_at_step.get("rank", 0) \
                and step == tr.kill_rank_at_step.get("step") and checkpoint is None:
            wait_until_reports_collected()
            log.warning("[rank %d] kill_rank_at_step: SIGKILL at step %d", rank, step)
            os.kill(os.getpid(), signal.SIGKILL)

        # rollout: this worker's share of the batch
        problems = [next(stream) for _ in range(per_worker)]
        sampler_gen.manual_seed(derived_seed(cfg.seed, 4, rank, step))
        unwrap(policy).lm.eval()
        t0 = time.perf_counter()
        tools_before = env.timings.tools_s
        episodes = env.rollout(unwrap(policy).lm, [task.prompt(p, few_shot) for p in problems],
                               [problem_meta(p) for p in problems], temp, sampler_gen)
        rollout_s = time.perf_counter() - t0
        timings["tools"] += env.timings.tools_s - tools_before
        timings["rollout"] += rollout_s - (env.timings.tools_s - tools_before)

        # update
        learner.generator.manual_seed(derived_seed(cfg.seed, 5, rank, step))
        learn_metrics = learner.step(episodes, progress=step / tr.max_steps)
        timings["update"] += learn_metrics["time/update_s"]
        step += 1

        tokens = sum(ep.num_model_tokens for ep in episodes)
        metrics = {**episode_metrics(episodes), **learn_metrics,
                   "time/rollout_s": rollout_s, "perf/tokens_per_s": tokens / max(rollout_s, 1e-9)}
        metrics = all_mean(metrics)
        metrics["perf/tokens_per_s"] *= size  # throughput of the whole group
        due_eval = step == tr.max_steps or (tr.eval_every and step % tr.eval_every == 0)
        if due_eval:
            metrics.update(run_eval(step))
        metrics["time/step_s"] = time.perf_counter() - t_step
        t0 = time.perf_counter()
        if rank == 0:
            tracker.log(metrics, step)
            if step % tr.log_every == 0 or due_eval:
                log.info(console_line(step, tr.max_steps, metrics))
        timings["logging"] += time.perf_counter() - t0
        last_metrics = {**last_metrics, **metrics}
        due_ckpt = step == tr.max_steps or (tr.checkpoint_every and step % tr.checkpoint_every == 0)
        if due_ckpt or due_eval:
            last_metrics["dist/world_size"] = size
            last_metrics["dist/param_digest_spread"] = param_digest_spread(unwrap(policy))
            report({k: v for k, v in last_metrics.items() if not k.startswith("time/")}, step, save=bool(due_ckpt))

    if rank == 0:
        totals = {f"time/total_{k}_s": v for k, v in timings.items()}
        tracker.log(totals, step)
        tracker.summary({**last_metrics, **totals})
        tracker.finish()
    barrier()
