"""Where answers come from: a folder of raw answer trees, or ToolEval's converted files."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tasks.toolbench.formats import Query, find_answer_files, read_query_file
from tasks.toolbench.tooleval.converted import read_converted
from tasks.toolbench.tooleval.from_trees import read_answer_trees, relevant_function_names
from tasks.toolbench.tooleval.records import EvalAnswer


def read_queries(path: str | os.PathLike[str] | None) -> dict[str, Query]:
    """Query files (one file or a folder of them) by query id, for relevant APIs."""
    if path is None:
        return {}
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    out: dict[str, Query] = {}
    for file in files:
        for query in read_query_file(file):
            out.setdefault(str(query.query_id), query)
    return out


def load_answers(path: str | os.PathLike[str], *, model: str | None = None, method: str = "DFS_woFilter_w2",
                 queries: str | os.PathLike[str] | None = None, seed: int = 0) -> list[EvalAnswer]:
    """Answers from ``path``: a converted file, a folder of converted ``<test_set>.json`` files,
    or a folder of raw answer trees (``G*_answer/<id>_..._<method>.json``)."""
    path = Path(path)
    by_id = read_queries(queries)
    if path.is_dir() and find_answer_files(path, method):
        return read_answer_trees(path, model=model or path.name, method=method, seed=seed, queries=by_id)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no answer trees (*{method}*.json) and no converted files")
    answers = []
    for file in files:
        for qid, answer in read_converted(file, model=model).items():
            query = by_id.get(qid)
            if query is not None and query.query.strip() == answer.query.strip() and query.relevant_apis:
                answer = replace(answer, relevant_apis=relevant_function_names(query))
            answers.append(answer)
    return answers
