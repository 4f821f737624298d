"""Tool documents rebuilt from query files (the sample ships none; see docs/toolbench.md).

The crawl's ``toolenv/tools`` (16k documents) is not in our offline data: upstream's examples
hold only ``api.py`` modules, which embed API keys. StableToolBench's 765 solvable queries
describe every API they offer in full (parameters, types, defaults, response sketch), 2,490
distinct APIs of 814 tools in 47 categories: enough to write those tools' documents in the
upstream layout, which the virtual server, the retriever and the synthetic generator read.
``tool_description`` is unknown there and left empty (ToolBench prints ``None`` for it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from tasks.toolbench.formats import (
    ApiRecord,
    Query,
    ToolApi,
    ToolDocument,
    read_query_file,
    read_tool_root,
    write_tool_document,
)
from tasks.toolbench.names import standardize
from tasks.toolbench.paths import stabletoolbench_queries_dir

log = logging.getLogger(__name__)



def stabletoolbench_query_files(folder: str | os.PathLike[str] | None = None) -> list[Path]:
    folder = folder if folder is not None else stabletoolbench_queries_dir()
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no StableToolBench query files (solvable_queries/test_instruction/*.json)")
    return files


def read_queries(files: Iterable[str | os.PathLike[str]]) -> list[Query]:
    return [q for f in files for q in read_query_file(f)]


def _tool_api(api: ApiRecord) -> ToolApi:
    return ToolApi(
        name=api.api_name,
        description=api.api_description,
        method=api.method,
        required_parameters=api.required_parameters,
        optional_parameters=api.optional_parameters,
        template_response=api.template_response,
    )


def build_tool_documents(queries: Iterable[Query]) -> list[ToolDocument]:
    """One document per (category, tool) of the queries' ``api_list`` entries, each API once
    (its first description wins; a later one that differs is logged), sorted by category and
    standard name, APIs in order of first appearance."""
    apis: dict[tuple[str, str], dict[str, ApiRecord]] = {}
    for query in queries:
        for api in query.api_list:
            tool_apis = apis.setdefault((api.category_name, api.tool_name), {})
            seen = tool_apis.get(api.api_name)
            if seen is None:
                tool_apis[api.api_name] = api
            elif seen != api:
                log.debug("%s / %s / %s described differently in %s; keeping the first",
                          *api.key, query.file)
    docs: dict[tuple[str, str], ToolDocument] = {}
    for (category, tool_name), by_name in apis.items():
        doc = ToolDocument(
            category=category,
            standard_name=standardize(tool_name),
            tool_name=tool_name,
            tool_description="",
            api_list=tuple(_tool_api(api) for api in by_name.values()),
        )
        clash = docs.get((category, doc.standard_name))
        if clash is not None:
            raise ValueError(f"tools {clash.tool_name!r} and {tool_name!r} of {category} share the file name {doc.standard_name}.json")
        docs[(category, doc.standard_name)] = doc
    return [docs[key] for key in sorted(docs)]


def write_tool_root(docs: Iterable[ToolDocument], root: str | os.PathLike[str]) -> Path:
    root = Path(root)
    for doc in docs:
        write_tool_document(doc, root)
    return root


def stabletoolbench_tool_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``toolenv/tools`` built from StableToolBench's queries, cached by a hash of the query
    files (built once per machine, a second call reads the cache)."""
    files = stabletoolbench_query_files()
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    base = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "toolrl" / "toolbench"
    root = base / f"toolenv-{digest.hexdigest()[:12]}" / "tools"
    done = root.parent / "complete"
    if not done.exists():
        docs = build_tool_documents(read_queries(files))
        tmp = root.parent.with_name(root.parent.name + f".tmp{os.getpid()}")
        write_tool_root(docs, tmp / "tools")
        (tmp / "complete").write_text(f"{len(docs)} tools\n")
        try:
            tmp.rename(root.parent)
        except OSError:  # another process finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        log.info("wrote %d tool documents under %s", len(docs), root)
    return root


def load_stabletoolbench_tools() -> dict[tuple[str, str], ToolDocument]:
    """The rebuilt documents, read back through the tool-document reader."""
    return read_tool_root(stabletoolbench_tool_root())
