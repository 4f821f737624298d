"""TriviaQA with a Wikipedia search tool (the seed's second experiment), and its synthetic twin.

The model asks ``<request><Wiki>query<call>``, reads the first paragraph of the top BM25 hit,
and answers ``Result=<answer><submit>``; reward 1 when its own answer matches an alias
(TriviaQA's normalisation; exact match, or ToolFormer's "within the first 20 words").

``data="triviaqa"``: real questions (hub, else the local DPR-style file) over a real corpus.
``data="synthetic"``: an invented encyclopedia (tasks/triviaqa/world.py) whose facts only its
articles hold; the same code, only the data and the corpus differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.episode import Episode
from orchestrator.task import Demonstration, Problem, Task
from orchestrator.tools.base import ToolError
from tasks.triviaqa.answers import CRITERIA, answer_reward
from tasks.triviaqa.loaders import keyword_query, load_hub, read_dpr_tsv, resolve_path, resolve_source
from tasks.triviaqa.world import QUESTIONS, WORLD_VERSION, World, make_world, write_corpus

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = ("triviaqa", "synthetic")

# ---------------------------------------------------------------- prompt

# Two shots in the protocol for hub models: true facts, passages as the tool returns them.
FEW_SHOT = """\
Which country is Mount Kilimanjaro in?

<request><{tool}>Mount Kilimanjaro<call>Mount Kilimanjaro is a dormant volcano in Tanzania. It is the highest mountain in Africa.<response>

Result=Tanzania<submit>

Who wrote the novel Nineteen Eighty-Four?

<request><{tool}>Nineteen Eighty-Four novel<call>Nineteen Eighty-Four is a dystopian novel by the English writer George Orwell, published in 1949.<response>

Result=George Orwell<submit>

"""


class TriviaQATask(Task):
    """Questions answered with a search tool; see the module docstring for the two data kinds."""

    name = "triviaqa"

    def __init__(
        self,
        data: str = "triviaqa",
        source: str = "auto",
        hub_dataset: str = "mandarjoshi/trivia_qa",
        hub_config: str = "rc.nocontext",
        local_file: str = "../shared/data/triviaqa_dpr_test.tsv",
        corpus: str | None = "../shared/data/mini_wiki_corpus.jsonl",
        cache_dir: str = "~/.cache/toolrl",
        index_dir: str | None = None,
        world_size: int = 2400,
        world_seed: int = 7,
        tool_name: str = "Wiki",
        top_k: int = 1,
        max_passage_chars: int = 400,
        criterion: str = "exact",
        num_eval: int = 256,
        eval_seed: int = 1234,
        demo_tool_frac: float = 0.3,
        demo_direct_correct_frac: float = 0.0,
        demo_practice_frac: float = 2.0,
    ) -> None:
        if data not in DATA:
            raise ValueError(f"data must be one of {DATA}, got {data!r}")
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if corpus is None and index_dir is None and data == "triviaqa":
            raise ValueError("give a corpus (the index is built from it) or the index_dir of a built index")
        self.data = data
        self.source = source
        self.hub_dataset = hub_dataset
        self.hub_config = hub_config
        self.local_file = local_file
        self.corpus = corpus
        self.cache_dir = cache_dir
        self.index_dir = index_dir
        self.world_size = world_size
        self.world_seed = world_seed
        self.tool_name = tool_name
        self.top_k = top_k
        self.max_passage_chars = max_passage_chars
        self.criterion = criterion
        self.num_eval = num_eval
        self.eval_seed = eval_seed
        self.demo_tool_frac = demo_tool_frac
        self.demo_direct_correct_frac = demo_direct_correct_frac
        self.demo_practice_frac = demo_practice_frac
        self._world: World | None = None
        self._split: tuple[list[Problem], list[Problem]] | None = None

    # ------------------------------------------------------------ data

    @property
    def world(self) -> World:
        if self.data != "synthetic":
            raise AttributeError("only data=synthetic has a world")
        if self._world is None:
            self._world = make_world(self.world_size, self.world_seed)
        return self._world

    def _splits(self) -> tuple[list[Problem], list[Problem]]:
        """(train, eval): the eval set is fixed by ``eval_seed`` and never trained on."""
        if self._split is not None:
            return self._split
        if self.data == "synthetic":
            facts = self.world.facts()
            rng = random.Random(self.eval_seed)
            held = set(rng.sample(range(len(facts)), min(self.num_eval, len(facts) // 2)))
            # eval: one fixed template per fact; train: every template of the other facts
            evals = [self._synthetic_problem(facts[i], QUESTIONS[facts[i].attribute][i % 2]) for i in sorted(held)]
            train = [self._synthetic_problem(f, t) for i, f in enumerate(facts) if i not in held
                     for t in QUESTIONS[f.attribute]]
        else:
            if resolve_source(self.source) == "hub":
                train = load_hub(self.hub_dataset, self.hub_config, "train")
                pool = load_hub(self.hub_dataset, self.hub_config, "validation")
                evals = random.Random(self.eval_seed).sample(pool, min(self.num_eval, len(pool)))
            else:
                problems = read_dpr_tsv(resolve_path(self.local_file, REPO_ROOT))
                order = list(range(len(problems)))
                random.Random(self.eval_seed).shuffle(order)
                n_eval = min(self.num_eval, len(problems) // 2)
                evals = [problems[i] for i in order[:n_eval]]
                train = [problems[i] for i in order[n_eval:]]
            held_q = {p.question for p in evals}
            train = [p for p in train if p.question not in held_q]
            train = [self._with_query(p) for p in train]
            evals = [self._with_query(p) for p in evals]
        self._split = (train, evals)
        return self._split

    @staticmethod
    def _synthetic_problem(fact: Any, template: str) -> Problem:
        return Problem(question=template.format(e=fact.entity), answer=[fact.answer],
                       meta={"query": fact.entity, "attribute": fact.attribute})

    @staticmethod
    def _with_query(p: Problem) -> Problem:
        return Problem(question=p.question, answer=p.answer, meta={**p.meta, "query": keyword_query(p.question)})

    def eval_problems(self) -> list[Problem]:
        return self._splits()[1]

    def train_problems(self, seed: int) -> Iterator[Problem]:
        """The training questions, reshuffled every pass, in an order fixed by ``seed``."""
        train = self._splits()[0]
        rng = random.Random(seed)
        while True:
            order = list(range(len(train)))
            rng.shuffle(order)
            for i in order:
                yield train[i]

    # ------------------------------------------------------------ prompt

    def prompt(self, problem: Problem, few_shot: bool) -> str:
        prefix = FEW_SHOT.format(tool=self.tool_name) if few_shot else ""
        return f"{prefix}{problem.question}\n\n"

    # ------------------------------------------------------------ tools

    def _key(self) -> str:
        world = (self.world_size, self.world_seed, WORLD_VERSION)
        return hashlib.sha1(json.dumps(world).encode()).hexdigest()[:10]

    def corpus_path(self) -> Path | None:
        """The corpus file, absolute; for data=synthetic it is written on first use."""
        cache = Path(self.cache_dir).expanduser().resolve()
        if self.data == "synthetic":
            return write_corpus(self.world, cache / "corpora" / f"synthetic-{self._key()}.jsonl")
        return None if self.corpus is None else resolve_path(self.corpus, REPO_ROOT)

    def index_path(self) -> Path:
        """``index_dir``, or ``<cache_dir>/indexes/<corpus name>`` (one index per corpus)."""
        if self.index_dir is not None:
            return resolve_path(self.index_dir, REPO_ROOT)
        cache = Path(self.cache_dir).expanduser().resolve()
        name = f"synthetic-{self._key()}" if self.data == "synthetic" else Path(str(self.corpus)).name.split(".")[0]
        return cache / "indexes" / name

    def tools(self) -> list[dict[str, Any]]:
        """One WikiSearch; its actor builds the index from the corpus when it is missing."""
        corpus = self.corpus_path()
        return [
            {
                "_target_": "orchestrator.tools.search.WikiSearch",
                "name": self.tool_name,
                "index_dir": str(self.index_path()),
                "corpus": None if corpus is None else str(corpus),
                "top_k": self.top_k,
                "max_chars": self.max_passage_chars,
            }
        ]

    # ------------------------------------------------------------ reward

    def reward(self, episode: Episode) -> float:
        return answer_reward(episode.model_text(), episode.meta["answer"], self.criterion)

    # ------------------------------------------------------------ warm start

    def search(self, queries: list[str]) -> list[str]:
        """The tool's answers, in-process (what the actor would say, errors included)."""
        from orchestrator.tools.search import WikiSearch

        config = {k: v for k, v in self.tools()[0].items() if k != "_target_"}
        tool = WikiSearch(**config)
        try:
            return tool.call_batch(queries)
        except ToolError:
            pass
        answers = []
        for q in queries:
            try:
                answers.append(tool.call(q))
            except ToolError as err:
                answers.append(f"Error: {err}")
        return answers

    def _guess(self, problem: Problem, rng: random.Random, pool: list[Problem]) -> str:
        """A direct answer as a model without the tool gives one: plausible, mostly wrong."""
        if rng.random() < self.demo_direct_correct_frac:
            return problem.answer[0]
        if self.data == "synthetic":
            return rng.choice(self.world.answers_for(problem.meta["attribute"]))
        return rng.choice(pool).answer[0]

    def demonstrations(self, n: int, rng: random.Random) -> list[Demonstration]:
        """``n`` decision demos (search with probability ``demo_tool_frac``, else a direct
        guess) plus ``demo_practice_frac * n`` practice demos of the mechanics (copy the key
        words, read the passage) with the decision to search given as context, as in the
        calculator: copying is learned fast while the prior to search stays low.
        Tool text comes from the real index, so demos show what the actor returns."""
        train = self.train_problems(rng.randrange(2**31))
        total = n + int(self.demo_practice_frac * n)
        problems = [next(train) for _ in range(total)]
        uses_tool = [i >= n or rng.random() < self.demo_tool_frac for i in range(total)]
        queries = sorted({p.meta["query"] for p, used in zip(problems, uses_tool) if used})
        passages = dict(zip(queries, self.search(queries)))
        opener = f"<request><{self.tool_name}>"
        demos: list[Demonstration] = []
        for i, (p, used) in enumerate(zip(problems, uses_tool)):
            prompt = self.prompt(p, few_shot=False)
            call = f"{p.meta['query']}<call>"
            tool = ("tool", f"{passages.get(p.meta['query'], '')}<response>")
            answer = f"\n\nResult={p.answer[0]}<submit>"
            if i >= n:  # practice: the decision tokens are context, not targets
                demos.append([("prompt", prompt + opener), ("model", call), tool, ("model", answer)])
            elif used:
                demos.append([("prompt", prompt), ("model", opener + call), tool, ("model", answer)])
            else:
                demos.append([("prompt", prompt), ("model", f"Result={self._guess(p, rng, problems)}<submit>")])
        rng.shuffle(demos)
        return demos

    def fingerprint(self) -> dict[str, Any]:
        """What changes the demonstrations (paths of caches do not)."""
        skip = {"cache_dir", "index_dir"}
        kept = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in skip}
        return kept | {"task": self.name, "world_version": WORLD_VERSION}
