"""The retrieval corpus and queries: API documents as ToolBench writes them, relevance by query.

A document is ToolBench's ``process_retrieval_ducoment`` text (``toolbench/utils.py``
@d56fdd8): ``category, tool, api, description, required_params: <json>, optional_params:
<json>, return_schema: <json>``. The corpus is every API of the query files given (one
group's file in ToolBench; StableToolBench's six files give 2,490 APIs), each API once by
``(category, tool, api)``. A query's relevant documents are the ``api_list`` entries its
``relevant APIs`` name (``[tool, api]`` pairs, matched within its own ``api_list``).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass

from tasks.toolbench.formats import ApiRecord, Query

logger = logging.getLogger(__name__)

ApiId = tuple[str, str, str]  # (category_name, tool_name, api_name)


def api_document(api: ApiRecord) -> str:
    """ToolBench's retrieval document for one API (``json.dumps`` defaults, as upstream)."""
    raw = api.to_json()
    return (f"{api.category_name or ''}, {api.tool_name or ''}, {api.api_name or ''}, {api.api_description or ''}"
            f", required_params: {json.dumps(raw.get('required_parameters', ''))}"
            f", optional_params: {json.dumps(raw.get('optional_parameters', ''))}"
            f", return_schema: {json.dumps(raw.get('template_response', ''))}")


@dataclass(frozen=True)
class ApiDoc:
    api_id: ApiId
    text: str
    record: ApiRecord


@dataclass(frozen=True)
class RetrievalQuery:
    """A query and the documents it should retrieve; ``group`` is its test set (G1_tool...)."""

    query_id: str
    group: str
    text: str
    relevant: frozenset[ApiId]

    @property
    def level(self) -> str:
        """``G1`` / ``G2`` / ``G3``: the instruction level the papers report by."""
        return self.group.split("_", 1)[0]


def build_corpus(queries: Iterable[Query]) -> list[ApiDoc]:
    """Every API of ``queries``, first description wins, in order of first appearance."""
    docs: dict[ApiId, ApiDoc] = {}
    for query in queries:
        for api in query.api_list:
            if api.key not in docs:
                docs[api.key] = ApiDoc(api_id=api.key, text=api_document(api), record=api)
    return list(docs.values())


def retrieval_queries(queries: Iterable[Query], group: str) -> list[RetrievalQuery]:
    """The queries of one file with their relevant API ids; a relevant pair missing from the
    query's own ``api_list`` is an error naming the query."""
    out = []
    for query in queries:
        by_pair = {(api.tool_name, api.api_name): api.key for api in query.api_list}
        missing = [pair for pair in query.relevant_apis if pair not in by_pair]
        if missing:
            raise ValueError(f"{query.file}: query {query.query_id}: relevant APIs {missing} are not in its api_list")
        if not query.relevant_apis:
            continue
        out.append(RetrievalQuery(query_id=str(query.query_id), group=group, text=query.query,
                                  relevant=frozenset(by_pair[pair] for pair in query.relevant_apis)))
    return out


def split_by_query(queries: list[RetrievalQuery], test_fraction: float = 0.2,
                   seed: int = 0) -> tuple[list[RetrievalQuery], list[RetrievalQuery]]:
    """A seeded split by query (never by pair, so no query is on both sides), stratified by
    group so each group keeps its share."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for group in sorted({q.group for q in queries}):
        mine = sorted((q for q in queries if q.group == group), key=lambda q: q.query_id)
        random.Random(f"{seed}|split|{group}").shuffle(mine)
        cut = round(len(mine) * test_fraction)
        test += mine[:cut]
        train += mine[cut:]
    return train, test
