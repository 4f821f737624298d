"""TriviaQA's task on an invented encyclopedia (world.py): facts no model knows, so it must search.

The same prompt, tool, reward and demonstrations as ``triviaqa`` (search_task.py); the
world is the data and its articles are the corpus, written on first use under cache_dir.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.fields import value
from orchestrator.task import Problem
from tasks.triviaqa.search_task import SearchSpec, SearchTask
from tasks.triviaqa.world import QUESTIONS, WORLD_VERSION, World, make_world, write_corpus


@dataclass
class SyntheticSpec(SearchSpec):
    """``conf/task/triviaqa_synthetic.yaml`` under ``spec:``."""

    world_size: int = value(ge=10)
    world_seed: int = value(ge=0)


class SyntheticTriviaQATask(SearchTask):
    Spec = SyntheticSpec

    def __init__(self, spec: SyntheticSpec, name: str = "triviaqa_synthetic") -> None:
        super().__init__(spec, name)
        self._world: World | None = None

    @property
    def world(self) -> World:
        if self._world is None:
            self._world = make_world(self.spec.world_size, self.spec.world_seed)
        return self._world

    def make_splits(self) -> tuple[list[Problem], list[Problem]]:
        """Eval: one fixed template per held-out fact; train: every template of the other facts."""
        facts = self.world.facts()
        rng = random.Random(self.spec.eval_seed)
        held = set(rng.sample(range(len(facts)), min(self.spec.num_eval, len(facts) // 2)))
        evals = [self._problem(facts[i], QUESTIONS[facts[i].attribute][i % 2]) for i in sorted(held)]
        train = [self._problem(f, t) for i, f in enumerate(facts) if i not in held for t in QUESTIONS[f.attribute]]
        return train, evals

    @staticmethod
    def _problem(fact: Any, template: str) -> Problem:
        return Problem(question=template.format(e=fact.entity), answer=[fact.answer],
                       meta={"query": fact.entity, "attribute": fact.attribute, "kinds": {"attribute": fact.attribute}})

    def _key(self) -> str:
        world = (self.spec.world_size, self.spec.world_seed, WORLD_VERSION)
        return hashlib.sha1(json.dumps(world).encode()).hexdigest()[:10]

    def corpus_path(self) -> Path:
        cache = Path(self.spec.cache_dir).expanduser().resolve()
        return write_corpus(self.world, cache / "corpora" / f"synthetic-{self._key()}.jsonl")

    def index_name(self) -> str:
        return f"synthetic-{self._key()}"

    def guess(self, problem: Problem, rng: random.Random, pool: list[Problem]) -> str:
        return rng.choice(self.world.answers_for(problem.meta["attribute"]))

    def fingerprint(self) -> dict[str, Any]:
        return super().fingerprint() | {"world_version": WORLD_VERSION}
