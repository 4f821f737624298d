"""TriviaQA with a Wikipedia search tool (the seed's second experiment).

The model asks ``<request><Wiki>query<call>``, reads the first paragraph of the top BM25 hit,
and answers ``Result=<answer><submit>``; reward 1 when its own answer matches an alias
(TriviaQA's normalisation; exact match, or ToolFormer's "within the first 20 words").
Questions come from the hub when it answers, else from the local DPR-style file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from orchestrator.config.fields import value
from orchestrator.task import Problem
from orchestrator.task.sources import SOURCES, hub_or_local, resolve_path
from tasks.triviaqa.loaders import keyword_query, load_hub, read_dpr_tsv
from tasks.triviaqa.search_task import SearchSpec, SearchTask


@dataclass
class TriviaQASpec(SearchSpec):
    """``conf/task/triviaqa.yaml`` under ``spec:``."""

    source: str = value(choices=SOURCES)
    hub_dataset: str = value()
    hub_config: str = value()
    local_file: str = value()
    corpus: Optional[str] = value()


class TriviaQATask(SearchTask):
    Spec = TriviaQASpec

    def __init__(self, spec: TriviaQASpec, name: str = "triviaqa") -> None:
        super().__init__(spec, name)

    def problems(self) -> list[str]:
        s, found = self.spec, []
        if s.corpus is None and s.index_dir is None:
            found.append("task.spec.corpus: null, and no task.spec.index_dir either: give a corpus (the index is "
                         "built from it) or the folder of a built index")
        if s.corpus is not None and not resolve_path(s.corpus).exists():
            found.append(f"task.spec.corpus: {s.corpus} does not exist (resolved: {resolve_path(s.corpus)})")
        if s.source == "local" and not resolve_path(s.local_file).exists():
            found.append(f"task.spec.local_file: {s.local_file} does not exist")
        return found

    def make_splits(self) -> tuple[list[Problem], list[Problem]]:
        s = self.spec

        def from_hub() -> tuple[list[Problem], list[Problem]]:
            train = load_hub(s.hub_dataset, s.hub_config, "train")
            pool = load_hub(s.hub_dataset, s.hub_config, "validation")
            return train, random.Random(s.eval_seed).sample(pool, min(s.num_eval, len(pool)))

        def from_file() -> tuple[list[Problem], list[Problem]]:
            problems = read_dpr_tsv(resolve_path(s.local_file))
            order = list(range(len(problems)))
            random.Random(s.eval_seed).shuffle(order)
            n_eval = min(s.num_eval, len(problems) // 2)
            return [problems[i] for i in order[n_eval:]], [problems[i] for i in order[:n_eval]]

        train, evals = hub_or_local(s.source, "triviaqa", from_hub, from_file)
        held = {p.question for p in evals}
        train = [p for p in train if p.question not in held]
        return [self._with_query(p) for p in train], [self._with_query(p) for p in evals]

    @staticmethod
    def _with_query(p: Problem) -> Problem:
        return Problem(question=p.question, answer=p.answer, meta={**p.meta, "query": keyword_query(p.question)})

    def corpus_path(self) -> Path | None:
        return None if self.spec.corpus is None else resolve_path(self.spec.corpus)

    def index_name(self) -> str:
        return Path(str(self.spec.corpus)).name.split(".")[0]

    def guess(self, problem: Problem, rng: random.Random, pool: list[Problem]) -> str:
        return rng.choice(pool).answer[0]
