"""Wikipedia-style passage search: BM25 (``bm25s``) over a corpus, served from Ray tool actors.

Build an index once (``python -m orchestrator.tools.search build --corpus PATH --out DIR``),
then point :class:`WikiSearch` at it from a tool config. See docs/search.md.
"""

from orchestrator.tools.search.corpus import CorpusError, Passage, read_passages
from orchestrator.tools.search.index import BuildSettings, PartialIndexError, SearchIndex, build_index, ensure_index
from orchestrator.tools.search.target import IndexTargetError
from orchestrator.tools.search.tool import WikiSearch, pool_prefix

__all__ = [
    "BuildSettings",
    "CorpusError",
    "IndexTargetError",
    "PartialIndexError",
    "Passage",
    "SearchIndex",
    "WikiSearch",
    "build_index",
    "ensure_index",
    "pool_prefix",
    "read_passages",
]
