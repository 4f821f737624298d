"""Query files: ToolBench's ``instruction/G{1,2,3}_query.json``, ``test_instruction/*.json``
and StableToolBench's ``solvable_queries/test_instruction/*.json`` (one list of queries each),
and the ``test_query_ids/*.json`` files (``{"<id>": 0, ...}``).

A query names the APIs offered to the model (``api_list``) and, for generated queries, the
pairs ``[tool_name, api_name]`` it was written for (``relevant APIs``). Open-domain demos
carry only ``query`` and ``query_id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tasks.toolbench.formats.apis import ApiRecord, read_api_record
from tasks.toolbench.formats.reading import At, load_json

_QUERY_KEYS = {"query", "query_id", "api_list", "relevant APIs"}


@dataclass(frozen=True)
class Query:
    query_id: int | str
    query: str
    api_list: tuple[ApiRecord, ...] = ()
    # (tool_name, api_name) pairs the query was generated for.
    relevant_apis: tuple[tuple[str, str], ...] = ()
    file: str = field(default="", compare=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "api_list": [api.to_json() for api in self.api_list],
            "query": self.query,
            "relevant APIs": [list(pair) for pair in self.relevant_apis],
            "query_id": self.query_id,
        }


def _read_relevant(at: At) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in at.items():
        item.expect(list)
        if len(item.value) != 2:
            item.fail(f"expected a [tool_name, api_name] pair, found {len(item.value)} elements")
        tool, api = (element.expect(str).value for element in item.items())
        pairs.append((tool, api))
    return tuple(pairs)


def read_query(at: At) -> Query:
    at.expect(dict)
    return Query(
        query_id=at.get("query_id", int, str),
        query=at.get("query", str),
        api_list=tuple(read_api_record(item) for item in at.key("api_list", list, default=[]).items()),
        relevant_apis=_read_relevant(at.key("relevant APIs", list, default=[])),
        file=at.file,
        extra={k: v for k, v in at.value.items() if k not in _QUERY_KEYS},
    )


def read_query_file(path: str | os.PathLike[str]) -> list[Query]:
    """Every query of one file, in file order."""
    root = load_json(path).expect(list)
    return [read_query(item) for item in root.items()]


def read_query_ids(path: str | os.PathLike[str]) -> list[str]:
    """A ``test_query_ids`` file: the ids (as strings, as the file keys them), in file order."""
    root = load_json(path).expect(dict)
    return [key for key, _ in root.members()]
