"""The Wikipedia search tool: ``<request><Wiki>query<call>`` -> first paragraph of the top hit.

Built inside a Ray tool actor from a Hydra config such as::

    - _target_: orchestrator.tools.search.WikiSearch
      name: Wiki
      index_dir: ${paths.cache_dir}/wiki-index
      # optional: build the index inside the actor when missing or stale
      corpus: /work/shared/data/mini_wiki_corpus.jsonl
      top_k: 1
      max_chars: 400

The index is memory-mapped, so every actor of a node shares one copy in the page cache; to
share the actors themselves between runs, give ``build_router`` the prefix
:func:`pool_prefix` returns (one pool per index; see docs/search.md).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from orchestrator.tools.base import ToolError
from orchestrator.tools.search.index import MANIFEST, SearchIndex, ensure_index


class WikiSearch:
    """BM25 passage search; answers with the first paragraph of the top ``top_k`` hits.

    Answers are cut to ``max_chars`` characters (the seed's ``max_tool_response``: 400). A query
    with no indexed word (empty, stop words only, unknown words) raises :class:`ToolError`, so
    the model sees an error and ``tools/error_frac`` counts it. Recent answers are kept in an
    LRU cache of ``cache_size`` queries (RL asks the same question many times; 0 turns it off).
    """

    description = "Searches Wikipedia and returns the first paragraph of the best-matching article."

    def __init__(
        self,
        index_dir: str,
        name: str = "Wiki",
        top_k: int = 1,
        max_chars: int = 400,
        corpus: str | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.name = name
        self.top_k = top_k
        self.max_chars = max_chars
        if corpus is not None:
            ensure_index(corpus, index_dir)
        self.index = SearchIndex(index_dir)
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # actors answer up to max_concurrency batches at once

    # ------------------------------------------------------------ the protocol

    def call(self, query: str) -> str:
        return self._check(query, self._answers([query])[0])

    def call_batch(self, queries: list[str]) -> list[str]:
        """One bm25s retrieval for the whole batch. If a query has no answer this raises, and
        the pool retries query by query (from the cache) so only that query gets the error."""
        answers = self._answers(queries)
        return [self._check(q, a) for q, a in zip(queries, answers)]

    # ------------------------------------------------------------ helpers

    def _check(self, query: str, answer: str | None) -> str:
        if answer is None:
            raise ToolError(f"no passage matches {query[:100]!r}")
        return answer

    def _format(self, paragraphs: list[str]) -> str | None:
        if not paragraphs:
            return None
        return "\n".join(paragraphs)[: self.max_chars]

    def _answers(self, queries: list[str]) -> list[str | None]:
        answers: dict[str, str | None] = {}
        with self._lock:
            for q in queries:
                if q in self._cache:
                    self._cache.move_to_end(q)
                    answers[q] = self._cache[q]
        todo = list(dict.fromkeys(q for q in queries if q not in answers))
        if todo:
            hits = self.index.search(todo, k=self.top_k)
            fresh = {q: self._format([h.text for h in hs]) for q, hs in zip(todo, hits)}
            answers.update(fresh)
            if self._cache_size:
                with self._lock:
                    self._cache.update(fresh)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return [answers[q] for q in queries]


def pool_prefix(index_dir: str | os.PathLike[str]) -> str:
    """An actor-name prefix for ``build_router`` that is the same for every run using this
    index (its real path and manifest) and different for any other index or a rebuild."""
    path = Path(index_dir).resolve()
    manifest = path / MANIFEST
    built = manifest.read_bytes() if manifest.is_file() else b""
    digest = hashlib.sha1(str(path).encode() + b"|" + built).hexdigest()[:10]
    return f"search-{digest}-"
