"""Held-out evaluation: the policy on the task's eval problems, sampled and greedy.

The eval set is split over workers and every figure is reduced as sums and counts, so 1
and 2 workers report the same numbers. Problems may carry kinds (``meta["kinds"]``, e.g.
``{"op": "*", "result": "negative"}``): accuracy is also reported per kind, and every
failing episode is returned, so a plateau says which problems it is made of.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch

from orchestrator.distributed import all_sum, world
from orchestrator.rollout.environment import TextEnvironment
from orchestrator.rollout.episode import Episode
from orchestrator.rollout.sampler import SamplingParams
from orchestrator.seeding import derived_seed
from orchestrator.task import Task, problem_meta


@dataclass
class EvalResult:
    metrics: dict[str, float]
    sampled: list[Episode]  # this worker's share
    failures: list[Episode] = field(default_factory=list)  # this worker's failing sampled and greedy episodes


def _kind_counts(episodes: list[Episode]) -> dict[str, list[float]]:
    """'kind/value' -> [reward sum, count] over episodes that carry that kind."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for ep in episodes:
        for kind, v in (ep.meta.get("kinds") or {}).items():
            cell = counts[f"{kind}/{v}"]
            cell[0] += ep.reward
            cell[1] += 1
    return counts


def evaluate(env: TextEnvironment, model: torch.nn.Module, task: Task, few_shot: bool, seed: int, step: int,
             samples: int = 1) -> EvalResult:
    """Sampled accuracy over ``samples`` episodes per problem (avg@k: the same expectation as one
    sample, with sqrt(k) less noise), greedy over one."""
    rank, size = world()
    problems = task.eval_problems()[rank::size]
    prompts = [task.prompt(p, few_shot) for p in problems]
    metas = [problem_meta(p) for p in problems]
    model.eval()
    gen = torch.Generator().manual_seed(derived_seed(seed, "eval", step))
    sampled = []
    for _ in range(samples):  # one pass of the eval set at a time: memory as for one sample
        sampled += env.rollout(model, prompts, metas, SamplingParams(temperature=1.0), gen)
    greedy = env.rollout(model, prompts, metas, SamplingParams(temperature=0.0), gen)
    for ep in greedy:
        ep.meta = {**ep.meta, "decoding": "greedy"}
    for ep in sampled:
        ep.meta = {**ep.meta, "decoding": "sampled"}

    # Kinds are named by every rank's problems; the union must be known to all before reducing.
    kinds_sampled, kinds_greedy = _kind_counts(sampled), _kind_counts(greedy)
    names = sorted(set(kinds_sampled) | set(kinds_greedy) | set(_all_kind_names(task)))
    values = [sum(e.reward for e in sampled), sum(e.reward for e in greedy), len(sampled),
              sum(e.num_calls > 0 for e in sampled)]
    for name in names:
        values += [*kinds_sampled.get(name, [0.0, 0.0]), *kinds_greedy.get(name, [0.0, 0.0])]
    sums = all_sum(values)
    n = max(sums[2], 1)
    metrics = {"eval/accuracy": sums[0] / n, "eval/accuracy_greedy": sums[1] / max(n / samples, 1),
               "eval/tool_used_frac": sums[3] / n, "eval/samples_per_problem": float(samples)}
    for i, name in enumerate(names):
        s_sum, s_n, g_sum, g_n = sums[4 + 4 * i : 8 + 4 * i]
        if s_n:
            metrics[f"eval/by_kind/{name}"] = s_sum / s_n
        if g_n:
            metrics[f"eval/by_kind_greedy/{name}"] = g_sum / g_n
    failures = [ep for ep in sampled + greedy if ep.reward < 1.0]
    return EvalResult(metrics, sampled, failures)


def _all_kind_names(task: Task) -> list[str]:
    """Every 'kind/value' of the whole eval set (the same on every rank)."""
    names = set()
    for p in task.eval_problems():
        for kind, v in (p.meta.get("kinds") or {}).items():
            names.add(f"{kind}/{v}")
    return sorted(names)
