"""The API retriever for open-domain ToolBench queries: BM25 and a fine-tuned dense encoder.

    from tasks.toolbench.retriever import build_retriever, corpus_from_query_files
    retriever = build_retriever("bm25", corpus_from_query_files([folder]))
    retriever.retrieve("Find concerts of the Arctic Monkeys", k=5)   # -> [(category, tool, api), ...]

Modules: corpus (ToolBench's API documents, relevance, the split by query), bm25, dense,
train (in-batch negatives on Ray Train), metrics (NDCG@k), build (``infer.retriever``).
Benchmark: bench/retriever.py; docs/toolbench.md, "## API retriever".
"""

from tasks.toolbench.retriever.build import KINDS, ApiRetriever, build_retriever, corpus_from_query_files
from tasks.toolbench.retriever.corpus import ApiDoc, ApiId, RetrievalQuery, api_document, build_corpus

__all__ = ["KINDS", "ApiDoc", "ApiId", "ApiRetriever", "RetrievalQuery", "api_document", "build_corpus",
           "build_retriever", "corpus_from_query_files"]
