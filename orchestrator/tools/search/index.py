"""Build, check and load a BM25 index in ``bm25s``'s own on-disk format.

Why not ``bm25s.BM25().index(corpus)``: it wants every passage's token list in memory at once
(Python lists: ~0.6 kB per 100-word passage, so ~13 GB for psgs_w100's 21M passages) and then
builds the score matrix beside them. Here the build streams in two passes and keeps only the
vocabulary and one chunk of passages in memory:

1. read passages chunk by chunk → tokenize with ``bm25s.tokenization.Tokenizer`` (the vocabulary
   grows as it goes) → per passage, the distinct terms and their counts go to scratch files on
   disk, the stored text (first paragraph) goes to ``passages.jsonl``, document frequencies are
   summed in one array;
2. knowing N, the average length and every document frequency, score each (passage, term) pair
   with BM25 (Lucene variant, bm25s's default) and place it in its column of the CSC matrix by a
   counting sort, writing straight into memory-mapped ``.npy`` files.

The directory is what ``bm25s.BM25.load(dir, mmap=True)`` reads (``data/indices/indptr.csc.index.npy``,
``vocab.index.json``, ``params.index.json``), plus ``passages.jsonl`` + ``passages.offsets.npy``
(the text the tool returns, read by offset from a memory map) and ``manifest.json`` (what was
built from what, written last: an index without one is unfinished). Scores equal those of
``bm25s.BM25().index()`` on the same token ids (a test checks it).

A build goes to a scratch directory beside the target and replaces it only when done, so search
actors never see half an index and a crash leaves the old one in place. It replaces only a
missing or empty directory or an index of ours (``target.py``): anything else is refused before
the build starts, and nothing is deleted. A build that stopped early (``strict``) is saved beside
the target as ``DIR.partial-<time>``, never over it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import mmap
import os
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer
from tqdm.auto import tqdm

from orchestrator.tools.search.corpus import CorpusError, Passage, corpus_size, detect_format, read_passages
from orchestrator.tools.search.target import MANIFEST, IndexTargetError, check_target, partial_dir

log = logging.getLogger(__name__)

PASSAGES = "passages.jsonl"
OFFSETS = "passages.offsets.npy"
# Bump when the directory layout or the scoring changes; older indexes are then stale.
LAYOUT_VERSION = 1
# Bad lines quoted in the manifest (all of them are counted).
MAX_BAD_LINE_EXAMPLES = 20


@dataclass(frozen=True)
class BuildSettings:
    """What decides the index's content; a change makes an existing index stale."""

    # BM25 term-frequency saturation.
    k1: float = 1.5
    # BM25 length normalisation (0: none, 1: full).
    b: float = 0.75
    # Stop words dropped before indexing and from queries: "en" (bm25s's English list) or "none".
    stopwords: str = "en"
    # Lower-case text before splitting.
    lower: bool = True
    # Regular expression whose matches are the tokens (bm25s's default: words of 2+ characters).
    splitter: str = r"(?u)\b\w\w+\b"
    # Characters of each passage's first paragraph kept for the tool's answers.
    store_chars: int = 4000

    def __post_init__(self) -> None:
        if self.stopwords not in ("en", "none"):
            raise ValueError(f"stopwords must be 'en' or 'none', got {self.stopwords!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        if self.store_chars < 1:
            raise ValueError(f"store_chars must be positive, got {self.store_chars}")

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(lower=self.lower, splitter=self.splitter, stopwords=None if self.stopwords == "none" else self.stopwords)


class PartialIndexError(RuntimeError):
    """A strict build met a bad line; the passages before it were saved as a usable index."""

    def __init__(self, error: CorpusError, index_dir: Path | None, passages: int) -> None:
        self.error = error
        self.index_dir = index_dir
        self.passages = passages
        if index_dir is None:
            where = "no passage came before it, so nothing was saved"
        else:
            where = (f"the {passages} passages before it were saved as a partial index at {index_dir} "
                     f"(manifest.json: complete=false; the target was left as it was)")
        super().__init__(f"bad corpus line {error}; {where}. Fix the line, or build without --strict to skip bad lines.")


@dataclass
class BuildReport:
    """What a build did; also written to ``manifest.json``."""

    corpus: str
    format: str
    passages: int = 0
    vocab: int = 0
    nnz: int = 0
    avg_passage_tokens: float = 0.0
    bad_lines: int = 0
    bad_line_examples: list[str] = field(default_factory=list)
    complete: bool = True
    stopped_at: str | None = None
    build_seconds: float = 0.0
    peak_rss_mb: float = 0.0


# ---------------------------------------------------------------- pass 1: stream, tokenize, spill


class _Spill:
    """Scratch files of pass 1, appended chunk by chunk: per passage its length, its number of
    distinct terms (int32) and the end of its line in passages.jsonl (int64); per (passage,
    term) pair the term id and its count (int32)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.files = {name: open(scratch / f"{name}.bin", "wb") for name in ("lens", "nnz", "terms", "tfs", "offsets")}

    def write(self, name: str, array: np.ndarray) -> None:
        self.files[name].write(np.ascontiguousarray(array).tobytes())

    def close(self) -> None:
        for f in self.files.values():
            f.close()

    def read(self, name: str, dtype: type) -> np.ndarray:
        path = self.scratch / f"{name}.bin"
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r")


class _Pass1:
    """Pass 1: tokenize chunks, spill their postings, store their first paragraphs."""

    def __init__(self, settings: BuildSettings, scratch: Path) -> None:
        self.settings = settings
        self.tokenizer = settings.tokenizer()
        self.spill = _Spill(scratch)
        self.passages_file = open(scratch / PASSAGES, "wb")
        self.offset = 0
        self.doc_freqs = np.zeros(1 << 16, dtype=np.int64)
        self.n_docs = 0
        self.total_tokens = 0
        self.spill.write("offsets", np.zeros(1, dtype=np.int64))

    def add(self, chunk: list[Passage]) -> None:
        if not chunk:
            return
        token_ids = list(self.tokenizer.streaming_tokenize([p.index_text() for p in chunk], update_vocab=True, allow_empty=True))
        lens = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        flat = np.fromiter(itertools.chain.from_iterable(token_ids), dtype=np.int64, count=int(lens.sum()))
        del token_ids
        # Distinct (passage, term) pairs with counts, ordered by passage then term.
        keys, tfs = np.unique((np.repeat(np.arange(len(chunk), dtype=np.int64), lens) << 32) | flat, return_counts=True)
        terms = (keys & 0xFFFFFFFF).astype(np.int32)
        nnz = np.bincount(keys >> 32, minlength=len(chunk))

        vocab = len(self.tokenizer.word_to_id)
        if vocab > len(self.doc_freqs):
            self.doc_freqs = np.concatenate([self.doc_freqs, np.zeros(max(vocab, 2 * len(self.doc_freqs)) - len(self.doc_freqs), np.int64)])
        self.doc_freqs[:vocab] += np.bincount(terms, minlength=vocab)

        self.spill.write("lens", lens.astype(np.int32))
        self.spill.write("nnz", nnz.astype(np.int32))
        self.spill.write("terms", terms)
        self.spill.write("tfs", tfs.astype(np.int32))

        offsets = np.empty(len(chunk), dtype=np.int64)
        for i, p in enumerate(chunk):
            line = json.dumps({"id": p.id, "title": p.title, "text": p.first_paragraph()[: self.settings.store_chars]}, ensure_ascii=False)
            data = line.encode("utf-8") + b"\n"
            self.passages_file.write(data)
            self.offset += len(data)
            offsets[i] = self.offset
        self.spill.write("offsets", offsets)
        self.n_docs += len(chunk)
        self.total_tokens += int(lens.sum())

    def close(self) -> None:
        self.spill.close()
        self.passages_file.close()


# ---------------------------------------------------------------- pass 2: score, counting sort


def _lucene_idf(doc_freqs: np.ndarray, n_docs: int) -> np.ndarray:
    """idf = ln(1 + (N - df + 0.5) / (df + 0.5)); 0 for a term in no passage (bm25s does the same)."""
    df = doc_freqs.astype(np.float64)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    idf[doc_freqs == 0] = 0.0
    return idf


def _write_matrix(p1: _Pass1, out: Path, settings: BuildSettings, progress: bool, pairs_per_step: int = 500_000) -> int:
    """Score every (passage, term) pair and write the CSC matrix (one column per term)."""
    n_docs, vocab = p1.n_docs, len(p1.tokenizer.word_to_id)
    doc_freqs = p1.doc_freqs[:vocab]
    lens, nnz = p1.spill.read("lens", np.int32), p1.spill.read("nnz", np.int32)
    terms, tfs = p1.spill.read("terms", np.int32), p1.spill.read("tfs", np.int32)
    n_pairs = int(doc_freqs.sum())
    if n_pairs != len(terms):
        raise RuntimeError(f"internal: {len(terms)} pairs spilled but document frequencies sum to {n_pairs}")
    avg_len = p1.total_tokens / n_docs
    idf = _lucene_idf(doc_freqs, n_docs)
    k1, b = settings.k1, settings.b

    indptr = np.zeros(vocab + 1, dtype=np.int64)
    np.cumsum(doc_freqs, out=indptr[1:])
    np.save(out / "indptr.csc.index.npy", indptr)
    data = np.lib.format.open_memmap(out / "data.csc.index.npy", mode="w+", dtype=np.float32, shape=(n_pairs,))
    indices = np.lib.format.open_memmap(out / "indices.csc.index.npy", mode="w+", dtype=np.int32, shape=(n_pairs,))
    heads = indptr[:-1].copy()  # next free slot in each term's column

    bar = tqdm(total=n_pairs, desc="score + sort", unit="pair", unit_scale=True, disable=not progress)
    doc, pair = 0, 0
    while doc < n_docs:
        # a step: whole passages, about pairs_per_step pairs
        step_nnz = np.cumsum(nnz[doc : min(n_docs, doc + pairs_per_step)], dtype=np.int64)
        stop = doc + max(1, int(np.searchsorted(step_nnz, pairs_per_step, side="right")))
        budget = int(step_nnz[stop - doc - 1])
        t = np.asarray(terms[pair : pair + budget])
        tf = np.asarray(tfs[pair : pair + budget]).astype(np.float32)
        counts = np.asarray(nnz[doc:stop])
        docs = np.repeat(np.arange(doc, stop, dtype=np.int32), counts)
        doc_len = np.repeat(np.asarray(lens[doc:stop]).astype(np.float64), counts)
        # Lucene BM25, as bm25s computes it: idf * tf / (k1 * (1 - b + b * |d| / avg|d|) + tf)
        score = (idf[t] * (tf / (k1 * ((1 - b) + b * doc_len / avg_len) + tf))).astype(np.float32)

        order = np.argsort(t, kind="stable")  # by term; passages stay in order inside a term
        t_sorted = t[order]
        first = np.empty(len(t_sorted), dtype=bool)
        first[0] = True
        np.not_equal(t_sorted[1:], t_sorted[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        rank = np.arange(len(t_sorted)) - np.repeat(starts, np.diff(np.append(starts, len(t_sorted))))
        slots = heads[t_sorted] + rank
        data[slots] = score[order]
        indices[slots] = docs[order]
        heads[t_sorted[starts]] += np.diff(np.append(starts, len(t_sorted)))

        bar.update(budget)
        doc, pair = stop, pair + budget
    bar.close()
    if not np.array_equal(heads, indptr[1:]):
        raise RuntimeError("internal: score matrix columns not filled exactly")
    data.flush()
    indices.flush()
    del data, indices
    return n_pairs


def _finish(p1: _Pass1, scratch: Path, settings: BuildSettings, progress: bool) -> tuple[int, int]:
    p1.close()
    n_pairs = _write_matrix(p1, scratch, settings, progress)
    vocab = p1.tokenizer.word_to_id
    with open(scratch / "vocab.index.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    params = dict(k1=settings.k1, b=settings.b, delta=0.5, method="lucene", idf_method="lucene", dtype="float32",
                  int_dtype="int32", num_docs=p1.n_docs, version=bm25s.__version__, backend="numpy")
    (scratch / "params.index.json").write_text(json.dumps(params, indent=2))
    offsets = p1.spill.read("offsets", np.int64)
    np.save(scratch / OFFSETS, offsets)
    del offsets
    for name in p1.spill.files:
        (scratch / f"{name}.bin").unlink()
    return len(vocab), n_pairs


# ---------------------------------------------------------------- the build


def _corpus_identity(corpus: Path) -> dict[str, Any]:
    st = corpus.stat()
    return {"corpus": str(corpus.resolve()), "corpus_bytes": st.st_size, "corpus_mtime_ns": st.st_mtime_ns}


def _swap_in(scratch: Path, out: Path) -> None:
    """Replace ``out`` by ``scratch``; the old index (if any) is removed after the swap."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(scratch, out)
    shutil.rmtree(old, ignore_errors=True)


def build_index(
    corpus: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fmt: str = "auto",
    settings: BuildSettings | None = None,
    strict: bool = False,
    chunk_size: int = 10_000,
    max_passages: int | None = None,
    progress: bool = True,
) -> BuildReport:
    """Build an index of ``corpus`` at ``out_dir`` (replacing what is there when done).

    ``out_dir`` must be missing, empty or an index of ours, else :class:`IndexTargetError`
    (nothing deleted). Bad lines are skipped with a warning naming ``file:line`` and counted in
    the manifest; with ``strict`` the first one stops the build, the passages read so far are
    saved as a partial index beside ``out_dir`` (``DIR.partial-<time>``, ``complete: false``),
    ``out_dir`` is left as it was, and :class:`PartialIndexError` says where.
    """
    settings = settings or BuildSettings()
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    corpus_path, out = Path(corpus), Path(out_dir)
    if not corpus_path.is_file():
        raise FileNotFoundError(f"corpus file {corpus_path} not found")
    check_target(out)
    fmt = detect_format(corpus_path) if fmt == "auto" else fmt
    start = time.perf_counter()
    report = BuildReport(corpus=str(corpus_path.resolve()), format=fmt)

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    stopped: CorpusError | None = None
    saved_at = out
    try:
        p1 = _Pass1(settings, scratch)

        def on_error(err: CorpusError) -> None:
            if strict:
                raise err
            report.bad_lines += 1
            if len(report.bad_line_examples) < MAX_BAD_LINE_EXAMPLES:
                report.bad_line_examples.append(str(err))
                log.warning("skipping bad line %s", err)
            elif report.bad_lines == MAX_BAD_LINE_EXAMPLES + 1:
                log.warning("more bad lines; only counting them from now on (see manifest.json)")

        bar = tqdm(total=corpus_size(corpus_path), desc=f"read {corpus_path.name}", unit="B", unit_scale=True, disable=not progress)
        chunk: list[Passage] = []
        try:
            stream: Iterator[Passage] = read_passages(corpus_path, fmt, on_error=on_error, on_bytes=bar.update)
            for passage in itertools.islice(stream, max_passages):
                chunk.append(passage)
                if len(chunk) == chunk_size:
                    p1.add(chunk)
                    chunk = []
                    bar.set_postfix(passages=p1.n_docs, vocab=len(p1.tokenizer.word_to_id), refresh=False)
        except CorpusError as err:
            stopped = err
        p1.add(chunk)
        del chunk
        bar.close()

        if p1.n_docs == 0:
            p1.close()
            if stopped is not None:
                raise PartialIndexError(stopped, None, 0)
            raise ValueError(f"{corpus_path}: no passages read ({report.bad_lines} bad lines)")
        report.vocab, report.nnz = _finish(p1, scratch, settings, progress)
        report.passages = p1.n_docs
        report.avg_passage_tokens = round(p1.total_tokens / p1.n_docs, 2)
        if stopped is not None:
            report.complete, report.stopped_at = False, f"{stopped.path}:{stopped.line}"
        report.build_seconds = round(time.perf_counter() - start, 3)
        report.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        manifest = {
            "layout_version": LAYOUT_VERSION,
            **asdict(report),
            **_corpus_identity(corpus_path),
            "settings": asdict(settings),
            "bm25s_version": bm25s.__version__,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        if stopped is not None:
            saved_at = partial_dir(out)
            os.replace(scratch, saved_at)
        else:
            check_target(out)  # again: the directory may have changed during a long build
            _swap_in(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("indexed %d passages (%d terms) from %s into %s in %.1fs",
             report.passages, report.vocab, corpus_path, saved_at, report.build_seconds)
    if stopped is not None:
        raise PartialIndexError(stopped, saved_at, report.passages)
    return report


# ---------------------------------------------------------------- freshness


def read_manifest(index_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no search index at {index_dir} (no {MANIFEST}); build one with "
            f"`python -m orchestrator.tools.search build --corpus CORPUS --out {index_dir}`"
        )
    return json.loads(path.read_text())


def stale_reason(corpus: str | os.PathLike[str], index_dir: str | os.PathLike[str], fmt: str = "auto",
                 settings: BuildSettings | None = None) -> str | None:
    """Why the index at ``index_dir`` does not match ``corpus`` (None when it does)."""
    try:
        manifest = read_manifest(index_dir)
    except FileNotFoundError:
        return "no index"
    except json.JSONDecodeError:
        return "unreadable manifest"
    if manifest.get("layout_version") != LAYOUT_VERSION:
        return f"layout version {manifest.get('layout_version')} (now {LAYOUT_VERSION})"
    if not manifest.get("complete", False):
        return f"partial index (stopped at {manifest.get('stopped_at')})"
    now = _corpus_identity(Path(corpus))
    for key, value in now.items():
        if manifest.get(key) != value:
            return f"{key} changed ({manifest.get(key)} -> {value})"
    if fmt != "auto" and manifest.get("format") != fmt:
        return f"format {manifest.get('format')} (asked for {fmt})"
    if manifest.get("settings") != asdict(settings or BuildSettings()):
        return "build settings changed"
    return None


@contextlib.contextmanager
def _lock(index_dir: Path) -> Iterator[None]:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(index_dir.parent / f".{index_dir.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_index(corpus: str | os.PathLike[str], index_dir: str | os.PathLike[str], fmt: str = "auto",
                 settings: BuildSettings | None = None, progress: bool = False) -> Path:
    """Build the index of ``corpus`` at ``index_dir`` unless a fresh one is there already.

    Fresh means: complete, same corpus path, size and mtime, same format and settings. A file
    lock beside ``index_dir`` makes concurrent callers (several search actors on a node) wait
    for one build instead of racing.
    """
    out = Path(index_dir)
    with _lock(out):
        reason = stale_reason(corpus, out, fmt, settings)
        if reason is not None:
            log.info("building search index %s from %s (%s)", out, corpus, reason)
            build_index(corpus, out, fmt=fmt, settings=settings, progress=progress)
    return out


# ---------------------------------------------------------------- loading and searching


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` highest positive scores, best first, ties broken by lower row."""
    rows = np.flatnonzero(scores > 0)
    if len(rows) > k:
        rows = rows[np.argpartition(scores[rows], -k)[-k:]]
    best = scores[rows]
    order = np.lexsort((rows, -best))
    return rows[order], best[order]


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its row in the index, its corpus id, title, stored text, score."""

    index: int
    id: str
    title: str
    text: str
    score: float


class SearchIndex:
    """A built index, memory-mapped: the score matrix through ``bm25s.BM25.load(mmap=True)``
    and the stored passages through ``mmap``, so actors on one node share the pages."""

    def __init__(self, index_dir: str | os.PathLike[str], mmap_arrays: bool = True) -> None:
        self.dir = Path(index_dir)
        self.manifest = read_manifest(self.dir)
        if not self.manifest.get("complete", True):
            log.warning("search index %s is partial: its build stopped at the bad line %s", self.dir, self.manifest.get("stopped_at"))
        settings = BuildSettings(**self.manifest["settings"])
        self.retriever = bm25s.BM25.load(self.dir, mmap=mmap_arrays, load_corpus=False, show_progress=False)
        self.tokenizer = settings.tokenizer()
        self.tokenizer.word_to_id = self.retriever.vocab_dict  # same ids as the build; read-only from here
        self._offsets = np.load(self.dir / OFFSETS, mmap_mode="r" if mmap_arrays else None)
        with open(self.dir / PASSAGES, "rb") as f:
            self._text = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def __len__(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def passage(self, i: int) -> dict[str, str]:
        """The stored record of passage ``i``: ``{"id", "title", "text"}`` (text: first paragraph)."""
        return json.loads(self._text[int(self._offsets[i]) : int(self._offsets[i + 1])])

    def query_ids(self, queries: list[str]) -> list[list[int]]:
        """Token ids of each query; words the index has never seen are dropped."""
        return list(self.tokenizer.streaming_tokenize(queries, update_vocab=False, allow_empty=False))

    def search(self, queries: list[str], k: int = 1) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first (ties: lower row first); passages sharing no
        word with the query are left out, so a query of unknown or stop words only gets ``[]``.

        Scores come from bm25s (``get_scores_from_ids``, the scoring ``retrieve`` runs); the
        top-k is chosen among the non-zero scores only. bm25s's own numpy top-k runs
        ``argpartition`` over all N scores, which is slow when most are tied at zero: 10 ms a
        query at 100k passages against 0.2 ms for the scoring (bench/search.py measures both).
        """
        ids = self.query_ids(queries)
        results: list[list[Hit]] = []
        for query_ids in ids:
            if not query_ids:
                results.append([])
                continue
            rows, scores = top_k(self.retriever.get_scores_from_ids(query_ids), k)
            hits = []
            for row, score in zip(rows.tolist(), scores.tolist()):
                record = self.passage(row)
                hits.append(Hit(index=row, id=record["id"], title=record["title"], text=record["text"], score=score))
            results.append(hits)
        return results

    def close(self) -> None:
        self._text.close()


__all__ = [
    "BuildReport",
    "BuildSettings",
    "Hit",
    "IndexTargetError",
    "PartialIndexError",
    "SearchIndex",
    "build_index",
    "ensure_index",
    "read_manifest",
    "stale_reason",
]
