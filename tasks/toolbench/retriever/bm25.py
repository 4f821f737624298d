"""BM25 over API documents (bm25s: Lucene's BM25, k1 1.5, b 0.75, English stop words)."""

from __future__ import annotations

import bm25s

from tasks.toolbench.retriever.corpus import ApiDoc, ApiId


class BM25Retriever:
    name = "bm25"

    def __init__(self, corpus: list[ApiDoc]) -> None:
        if not corpus:
            raise ValueError("an empty corpus")
        self.ids: list[ApiId] = [d.api_id for d in corpus]
        self.index = bm25s.BM25()
        self.index.index(bm25s.tokenize([d.text for d in corpus], show_progress=False), show_progress=False)

    def retrieve(self, query: str, k: int) -> list[ApiId]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: list[str], k: int) -> list[list[ApiId]]:
        k = min(k, len(self.ids))
        tokens = bm25s.tokenize(queries, show_progress=False)
        rows, _ = self.index.retrieve(tokens, k=k, show_progress=False)
        return [[self.ids[int(i)] for i in row] for row in rows]
