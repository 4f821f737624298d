"""What the two search tasks share: the prompt, the search tool, the reward and the demonstrations.

``triviaqa`` (real questions over a real corpus, tasks/triviaqa/real.py) and
``triviaqa_synthetic`` (an invented encyclopedia, tasks/triviaqa/synthetic.py) differ only in
their data, their corpus and how a model without the tool guesses.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from orchestrator.config.fields import value
from orchestrator.rollout.episode import Episode
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.task.demonstrations import ToolDemo, mix_demonstrations, total_demos
from orchestrator.task.sources import resolve_path
from tasks.triviaqa.answers import CRITERIA, answer_reward
from tasks.triviaqa.prompt import prompt
from tasks.triviaqa.tools import search_in_process, search_tool


@dataclass
class SearchSpec:
    """The keys both search tasks have (each task's YAML: the values, each with a comment)."""

    cache_dir: str = value()
    index_dir: Optional[str] = value()
    tool_name: str = value()
    top_k: int = value(ge=1)
    max_passage_chars: int = value(ge=1)
    criterion: str = value(choices=CRITERIA)
    num_eval: int = value(ge=1)
    eval_seed: int = value(ge=0)
    demo_tool_frac: float = value(ge=0, le=1)
    demo_direct_correct_frac: float = value(ge=0, le=1)
    demo_practice_frac: float = value(ge=0)


class SearchTask(Task):
    """Questions answered with a search tool; subclasses supply the data and the corpus."""

    location_fields = ("cache_dir", "index_dir")

    def __init__(self, spec: SearchSpec, name: str) -> None:
        super().__init__(spec, name)
        self._split: tuple[list[Problem], list[Problem]] | None = None

    # ------------------------------------------------------------ data

    @abc.abstractmethod
    def make_splits(self) -> tuple[list[Problem], list[Problem]]:
        """(train, eval); the eval set is fixed by ``eval_seed`` and never trained on."""

    def splits(self) -> tuple[list[Problem], list[Problem]]:
        if self._split is None:
            self._split = self.make_splits()
        return self._split

    def eval_problems(self) -> list[Problem]:
        return self.splits()[1]

    def train_problems(self, seed: int) -> Iterator[Problem]:
        """The training questions, reshuffled every pass, in an order fixed by ``seed``."""
        train = self.splits()[0]
        rng = random.Random(seed)
        while True:
            order = list(range(len(train)))
            rng.shuffle(order)
            for i in order:
                yield train[i]

    # ------------------------------------------------------------ prompt

    def prompt(self, problem: Problem, few_shot: bool) -> str:
        return prompt(problem.question, self.spec.tool_name, few_shot)

    # ------------------------------------------------------------ tools

    @abc.abstractmethod
    def corpus_path(self) -> Path | None:
        """The corpus file, absolute (None when only a built index is given)."""

    @abc.abstractmethod
    def index_name(self) -> str:
        """The index's folder name under <cache_dir>/indexes/ (one index per corpus)."""

    def index_path(self) -> Path:
        """``index_dir``, or ``<cache_dir>/indexes/<index_name>``."""
        if self.spec.index_dir is not None:
            return resolve_path(self.spec.index_dir)
        return Path(self.spec.cache_dir).expanduser().resolve() / "indexes" / self.index_name()

    def tools(self) -> list[dict[str, Any]]:
        s = self.spec
        return [search_tool(s.tool_name, self.index_path(), self.corpus_path(), s.top_k, s.max_passage_chars)]

    # ------------------------------------------------------------ reward

    def reward(self, episode: Episode) -> float:
        return answer_reward(episode.model_text(), episode.meta["answer"], self.spec.criterion)

    # ------------------------------------------------------------ demonstrations

    @abc.abstractmethod
    def guess(self, problem: Problem, rng: random.Random, pool: list[Problem]) -> str:
        """A direct answer as a model without the tool gives one: plausible, mostly wrong."""

    def demonstrations(self, n: int | None, rng: random.Random) -> list[Demonstration]:
        """The shared mix (decision and practice demos); tool text comes from the real index, so
        demos show what the actor returns."""
        s = self.spec
        n = n or 1000
        train = self.train_problems(rng.randrange(2**31))
        problems = [next(train) for _ in range(total_demos(n, s.demo_practice_frac))]
        tool_cfg = self.tools()[0]

        def observe(chosen: list[Problem]) -> list[str]:
            queries = sorted({p.meta["query"] for p in chosen})
            answers = dict(zip(queries, search_in_process(tool_cfg, queries)))
            return [answers[p.meta["query"]] for p in chosen]

        demo = ToolDemo(
            opener=f"<request><{s.tool_name}>",
            prompt=lambda p: self.prompt(p, few_shot=False),
            query=lambda p: p.meta["query"],
            observe=observe,
            answer=lambda p: f"\n\nResult={p.answer[0]}<submit>",
            guess=lambda p, r: f"Result={p.answer[0] if r.random() < s.demo_direct_correct_frac else self.guess(p, r, problems)}<submit>",
        )
        return mix_demonstrations(problems, n, s.demo_tool_frac, demo, rng)
