"""From query files to the environments the searches run in.

A query set is named as a StableToolBench group (``G1_instruction``: its solvable queries in
the offline data), given as a path to any query file (ToolBench's ``G1_query.json``,
StableToolBench's ``solvable_queries/test_instruction/*.json``), or as records already read.
Each query offers one function per ``api_list`` entry, in order, then ``Finish``, exactly as
ToolBench's ``rapidapi_wrapper`` builds them (:mod:`tasks.toolbench.schema`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tasks.toolbench.formats import Query, read_query_file
from tasks.toolbench.formats.queries import read_query
from tasks.toolbench.formats.reading import At
from tasks.toolbench.inference.env import APIRef, QueryEnv
from tasks.toolbench.inference.prompts import task_description
from tasks.toolbench.names import change_name, standardize
from tasks.toolbench.paths import stabletoolbench_queries_dir
from tasks.toolbench.schema import FINISH_FUNCTION, api_to_function

QuerySource = str | os.PathLike[str] | Iterable[Query | Mapping[str, Any]]


def load_queries(source: QuerySource, num_queries: int | None = None) -> list[Query]:
    """The first ``num_queries`` queries (all when None) of ``source``, in file order."""
    path = query_file(source)
    if path is not None:
        queries = read_query_file(path)
    else:
        queries = [q if isinstance(q, Query) else read_query(At(dict(q), "<queries>", f"[{i}]"))
                   for i, q in enumerate(source)]
    if num_queries is not None:
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        queries = queries[:num_queries]
    ids = [str(q.query_id) for q in queries]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"query ids must be unique; repeated: {', '.join(dup[:5])}")
    return queries


def query_file(source: QuerySource) -> Path | None:
    """The file a query source names (a path, or a StableToolBench group name); None for
    records given directly."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    if not path.exists() and not path.suffix:
        path = stabletoolbench_queries_dir() / f"{source}.json"
        if not path.exists():
            known = sorted(p.stem for p in stabletoolbench_queries_dir().glob("*.json"))
            raise FileNotFoundError(f"no query file {source!r}: give a path, or one of {', '.join(known)}")
    return path


def env_from_query(query: Query, finish: dict[str, Any] = FINISH_FUNCTION,
                   tool_descriptions: Mapping[str, str] | None = None) -> QueryEnv:
    """The environment of one query: its functions (``api_list`` order, then ``Finish``),
    where each sends its calls, and the task description listing its tools."""
    functions, apis, tools = [], {}, []
    for api in query.api_list:
        tool = standardize(api.tool_name)
        function = api_to_function(api, tool)
        functions.append(function)
        apis.setdefault(function["name"], APIRef(api.category_name, tool, change_name(standardize(api.api_name))))
        tools.append((tool, (tool_descriptions or {}).get(tool, "")))
    functions.append(finish)
    return QueryEnv(query_id=str(query.query_id), query=query.query, functions=functions, apis=apis,
                    task_description=task_description(tools), record=query.to_json())
