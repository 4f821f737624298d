"""Real TriviaQA: the hub loader, the local DPR-style file, and the keyword query.

``source="auto"`` takes the hub (``mandarjoshi/trivia_qa``, config ``rc.nocontext``) when it
answers and the local file (``question<TAB>['alias', ...]``, anserini's
topics.dpr.trivia.test.txt) otherwise.
"""

from __future__ import annotations

import ast
import csv
import logging
import os
import re

from orchestrator.task import Problem

log = logging.getLogger(__name__)

def read_dpr_tsv(path: str | os.PathLike[str]) -> list[Problem]:
    """``question<TAB>['alias', ...]`` lines; quoted fields are unquoted by csv, the alias list
    is a Python literal. A line that does not parse raises ValueError naming FILE:LINE."""
    problems = []
    with open(path, encoding="utf-8", newline="") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row:
                continue
            try:
                question, aliases_text = row
                aliases = ast.literal_eval(aliases_text)
                if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                    raise ValueError("the answer field is not a list of strings")
            except (ValueError, SyntaxError) as err:
                raise ValueError(f"{path}:{line_no}: cannot read question and aliases ({err})") from None
            problems.append(Problem(question=question.strip(), answer=aliases))
    return problems


def load_hub(dataset: str, config: str, split: str) -> list[Problem]:
    """One split of the hub dataset; answers are the aliases plus their normalised forms."""
    from datasets import load_dataset

    rows = load_dataset(dataset, config, split=split)
    problems = []
    for row in rows:
        answer = row["answer"]
        aliases = list(dict.fromkeys([answer["value"], *answer["aliases"], *answer.get("normalized_aliases", [])]))
        problems.append(Problem(question=row["question"].strip(), answer=aliases, meta={"id": row["question_id"]}))
    return problems


# Words a search query does without: question words and the glue of trivia questions.
_QUERY_STOP = frozenset(
    """a an the of in on at to for by with from and or as is was are were be been did does do
    which what who whom whose where when why how many much name named called known this that
    these those its it his her their first last one same""".split()
)


def keyword_query(question: str, max_words: int = 8) -> str:
    """The question's key words, in order: what a plain search would send."""
    words = (w.strip(".'") for w in re.findall(r"[\w'\-.]+", question))
    kept = [w for w in words if w and w.lower() not in _QUERY_STOP]
    return " ".join(kept[:max_words]) if kept else question.strip()
