"""ToolBench as a task: SFT on ToolBench trajectories (``algo=sft``), and an evaluation run of
its own (``mode=eval``: DFSDT or ReAct over the keyless virtual API server, then ToolEval).

    python -m orchestrator task=toolbench algo=sft trainer.num_workers=2 task.spec.data=sample
    python -m orchestrator task=toolbench mode=eval infer=dfsdt model=local model.pretrained=<checkpoint>/model

Training goes through the project's SFT algorithm in Ray Train workers like every other SFT:
this module turns ToolBench's files (data.py, convert.py, render.py) into demonstrations, gives
the tiny model a BPE tokenizer trained on the tool text, and scores held-out next steps
(metrics.py) at each evaluation. The policy is not rolled out against tools during training
(``has_rollouts`` is False): ToolBench's RL-free recipe (ToolLLaMA) is SFT.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from orchestrator.config.fields import value
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.task.sources import resolve_path

log = logging.getLogger(__name__)


@dataclass
class ToolBenchSpec:
    """``conf/task/toolbench.yaml`` under ``spec:`` (the values, each with a comment, are there)."""

    data: str = value(choices=("sample", "synthetic", "full"))
    source: Optional[str] = value()
    format: str = value(choices=("packed", "toolbench"))
    template: str = value(choices=("toolllama", "chat"))
    keep_thoughts: bool = value()
    num_train: Optional[int] = value(ge=1)
    num_heldout: Optional[int] = value(ge=1)
    heldout_fraction: float = value(gt=0, lt=1)
    data_seed: int = value(ge=0)
    eval_cases: int = value(ge=0)
    eval_max_new_tokens: int = value(ge=1)
    # The same steps again with the Action line limited to the offered functions (eval/constrained/...).
    eval_constrained: bool = value()
    vocab_size: int = value(ge=512)
    queries: str = value()
    num_queries: Optional[int] = value(ge=1)


@dataclass
class InferSpec:
    """``conf/infer/<method>.yaml``: how ``mode=eval`` searches and judges (tasks/toolbench/inference, tooleval)."""

    method: str = value(choices=("dfsdt", "react"))
    width: int = value(ge=1)
    max_depth: int = value(ge=1)
    depth_unit: str = value(choices=("nodes", "steps"))
    max_query_count: int = value(ge=1)
    pass_at: int = value(ge=1)
    temperature: float = value(ge=0)
    max_new_tokens: int = value(ge=1)
    num_workers: int = value(ge=1)
    queries_per_batch: int = value(ge=1)
    retriever: Optional[str] = value(choices=("bm25", "dense"))
    retriever_model: Optional[str] = value()
    retrieve_k: int = value(ge=1)
    judge: str = value(choices=("rules", "openai", "replay"))
    judge_base_url: Optional[str] = value()
    judge_model: Optional[str] = value()
    judge_replay: Optional[str] = value()
    judge_metric: str = value(choices=("sopr", "pass_rate"))
    judge_runs: int = value(ge=1)
    # The Action line names one of the offered functions (tasks/toolbench/constrain.py).
    constrain_actions: bool = value(default=False)


NO_ROLLOUTS = ("task=toolbench trains by SFT on ToolBench's trajectories (algo=sft) and evaluates with its own "
               "search (mode=eval); it has no {} for RL")


class ToolBenchTask(Task):
    Spec = ToolBenchSpec
    has_rollouts = False
    has_evaluation = True

    def __init__(self, spec: ToolBenchSpec, name: str = "toolbench") -> None:
        super().__init__(spec, name)

    def problems(self) -> list[str]:
        s, found = self.spec, []
        if s.data == "full" and not s.source:
            found.append("task.spec.source: data=full needs the release's answer/ folder or toolllama_G123_dfs_train.json")
        elif s.source and not resolve_path(s.source).exists():
            found.append(f"task.spec.source: {s.source} does not exist (resolved: {resolve_path(s.source)})")
        return found

    # ------------------------------------------------------------ data

    def _trajectories(self, split: str) -> list[Any]:
        from tasks.toolbench.data import load_trajectories
        from tasks.toolbench.synthetic import SyntheticSpec

        s = self.spec
        n = s.num_train if split == "train" else s.num_heldout
        return load_trajectories(s.data, split, source=str(resolve_path(s.source)) if s.source else None, n=n,
                                 synthetic=SyntheticSpec(seed=s.data_seed), heldout_fraction=s.heldout_fraction,
                                 seed=s.data_seed)

    @cached_property
    def train_trajectories(self) -> list[Any]:
        return self._trajectories("train")

    @cached_property
    def heldout_trajectories(self) -> list[Any]:
        return self._trajectories("heldout")

    def _demonstrations(self, trajectories: list[Any], format: str) -> list[Demonstration]:
        from tasks.toolbench.data import to_demonstrations

        return to_demonstrations(trajectories, format=format, template=self.spec.template,
                                 keep_thoughts=self.spec.keep_thoughts)

    def demonstrations(self, n: int | None, rng: random.Random) -> list[Demonstration]:
        demos = self._demonstrations(self.train_trajectories, self.spec.format)
        if not demos:
            raise ValueError(f"task=toolbench: no training trajectories for data={self.spec.data}")
        return demos if n is None else [demos[i % len(demos)] for i in range(n)]

    def heldout_demonstrations(self) -> list[Demonstration] | None:
        demos = self._demonstrations(self.heldout_trajectories, "packed")
        return demos or None

    # ------------------------------------------------------------ no rollouts

    def train_problems(self, seed: int) -> Iterator[Problem]:
        raise NotImplementedError(NO_ROLLOUTS.format("problem stream"))

    def eval_problems(self) -> list[Problem]:
        raise NotImplementedError(NO_ROLLOUTS.format("rollout evaluation"))

    def prompt(self, problem: Problem, few_shot: bool) -> str:
        raise NotImplementedError(NO_ROLLOUTS.format("prompt"))

    def tools(self) -> list[dict[str, Any]]:
        return []  # the virtual API server runs in mode=eval (tasks/toolbench/inference)

    def reward(self, episode: Any) -> float:
        raise NotImplementedError(NO_ROLLOUTS.format("reward"))

    # ------------------------------------------------------------ held-out next steps

    def evaluate_policy(self, model: Any, tokenizer: Any, seed: int, step: int) -> dict[str, float]:
        """The next step written greedily for ``eval_cases`` held-out steps (tools never trained on):
        parses, the right action among those offered, JSON arguments with the required keys,
        Finish at the right step."""
        from tasks.toolbench.generate import greedy_steps
        from tasks.toolbench.metrics import aggregate, score_step

        if not self.spec.eval_cases:
            return {}
        cases = self.heldout_cases[: self.spec.eval_cases]
        prompts = [c.prompt for c in cases]
        texts = greedy_steps(model, tokenizer, prompts, self.spec.eval_max_new_tokens)
        metrics = aggregate([score_step(text, c.reference, c.functions) for text, c in zip(texts, cases)], prefix="eval/")
        if self.spec.eval_constrained and self.spec.template == "toolllama":
            from tasks.toolbench.generate import constrained_steps

            texts = constrained_steps(model, tokenizer, prompts, [c.functions for c in cases], self.spec.eval_max_new_tokens)
            metrics |= aggregate([score_step(t, c.reference, c.functions) for t, c in zip(texts, cases)],
                                 prefix="eval/constrained/")
        return metrics

    @cached_property
    def heldout_cases(self) -> list[Any]:
        from tasks.toolbench.data import heldout_cases

        cases = heldout_cases(self.heldout_trajectories, template=self.spec.template, keep_thoughts=self.spec.keep_thoughts)
        random.Random(self.spec.data_seed).shuffle(cases)
        return cases

    # ------------------------------------------------------------ the tiny model

    def tiny_tokenizer(self, cache_dir: str) -> Any:
        """Byte-level BPE trained on the training text (a byte-level model would spend a token per
        character of ToolBench's JSON)."""
        from tasks.toolbench.tokenizer import cached_tokenizer

        texts = ["".join(t for _, t in d) for d in self.demonstrations(None, random.Random(0))[:5000]]
        return cached_tokenizer(texts, self.spec.vocab_size,
                                cache_dir=Path(cache_dir).expanduser() / "toolbench" / "tokenizers")

    def fingerprint(self) -> dict[str, Any]:
        skip = {"queries", "num_queries", "eval_cases", "eval_max_new_tokens", "eval_constrained"}
        return {k: v for k, v in super().fingerprint().items() if k not in skip} | {"data_version": 1}

    # ------------------------------------------------------------ mode=eval

    def run_evaluation(self, ctx: Any) -> dict[str, float]:
        from tasks.toolbench.evaluation import evaluate

        return evaluate(self.spec, ctx)
