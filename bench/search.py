"""Search benchmark: index build time, queries/s (batch and single) and peak memory, ours vs
``bm25s``'s in-memory build and ``rank_bm25`` (the naive baseline), measured in one run.

    python bench/search.py                          # 10k and 100k passages (a few minutes on 2 cores)
    python bench/search.py --sizes 10000 --queries 200

Passages are synthetic, made from the shared corpora: the words of
/work/shared/data/{mini_wiki_corpus,flashrag_sample_data}.jsonl with their own frequencies
(Zipf-like, as in Wikipedia), ~100 words per passage as in DPR's psgs_w100, plus two made-up
"names" per passage drawn from a pool that grows with the corpus (so the vocabulary grows
as a real one does and each passage has distinctive words). A query is 6 words of a random
passage, one of them a name, so its passage is the right answer: recall@1 is printed as a check.

Every measurement runs in its own subprocess so that its peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("TOOLRL_SHARED", "/work/shared")) / "data"
SOURCES = ("mini_wiki_corpus.jsonl", "flashrag_sample_data.jsonl")
WORDS_PER_PASSAGE = 100


# ---------------------------------------------------------------- synthetic corpus


def _source_words() -> tuple[list[str], list[int]]:
    counts: dict[str, int] = {}
    for name in SOURCES:
        with open(SHARED / name, encoding="utf-8") as f:
            for line in f:
                for w in re.findall(r"[A-Za-z][A-Za-z'-]+|\d+", json.loads(line)["contents"]):
                    counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=counts.get, reverse=True)  # type: ignore[arg-type]
    return words, [counts[w] for w in words]


def _name(rng: random.Random) -> str:
    syllables = ("ka", "lo", "mi", "ren", "tu", "sa", "vor", "el", "din", "qua", "br", "ix", "om", "pe", "zu", "thal")
    return "".join(rng.choice(syllables) for _ in range(rng.randint(3, 5))).capitalize()


def make_corpus(path: Path, n: int, seed: int = 0) -> list[tuple[int, str]]:
    """Write ``n`` passages as ``{"id","contents":"Title\\ntext"}`` JSONL; return (passage, query) pairs."""
    rng = random.Random(seed)
    words, weights = _source_words()
    names = [_name(rng) for _ in range(max(1000, n))]
    queries: list[tuple[int, str]] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            body = rng.choices(words, weights=weights, k=WORDS_PER_PASSAGE)
            own = rng.sample(names, 2)
            for name in own:
                body[rng.randrange(len(body))] = name
            title = f"{own[0]} {rng.choice(words[:2000])}"
            f.write(json.dumps({"id": str(i), "contents": f"{title}\n{' '.join(body)}"}) + "\n")
            queries.append((i, " ".join([own[1], *rng.sample(body, 5)])))
    return queries


# ---------------------------------------------------------------- workers (one per subprocess)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _AnonPeak:
    """Samples RssAnon (/proc/self/status) every 20 ms: memory the process really needs, as
    opposed to ru_maxrss, which also counts pages of memory-mapped files (the index being
    written, the scratch files being read), which the kernel can drop or write back."""

    def __init__(self) -> None:
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak_kb / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def worker_baseline(_: argparse.Namespace) -> dict:
    """RSS of a Python with our imports and nothing else (subtract it from the others)."""
    import bm25s  # noqa: F401
    import numpy  # noqa: F401
    import rank_bm25  # noqa: F401

    import orchestrator.tools.search  # noqa: F401

    return {"peak_rss_mb": _rss_mb(), "peak_anon_mb": _AnonPeak().stop()}


def worker_ours_build(a: argparse.Namespace) -> dict:
    from orchestrator.tools.search.index import build_index

    anon = _AnonPeak()
    t = time.perf_counter()
    report = build_index(a.corpus, a.index, progress=False)
    build_s = time.perf_counter() - t
    return {"build_s": build_s, "peak_rss_mb": _rss_mb(), "peak_anon_mb": anon.stop(), "index_mb": _dir_mb(Path(a.index)),
            "vocab": report.vocab, "nnz": report.nnz}


def _load_queries(a: argparse.Namespace) -> list[tuple[int, str]]:
    return [tuple(q) for q in json.loads(Path(a.queries_path).read_text())][: a.n_queries]  # type: ignore[misc]


def worker_ours_query(a: argparse.Namespace) -> dict:
    from orchestrator.tools.search import WikiSearch

    pairs = _load_queries(a)
    queries = [q for _, q in pairs]
    t = time.perf_counter()
    tool = WikiSearch(a.index, cache_size=0)
    load_s = time.perf_counter() - t
    tool.call_batch(queries[:8])  # warm the page cache like a running actor

    t = time.perf_counter()
    batched: list[str] = []
    for i in range(0, len(queries), a.batch_size):
        batched += tool.call_batch(queries[i : i + a.batch_size])
    batch_qps = len(queries) / (time.perf_counter() - t)

    single_n = min(len(queries), a.single_queries)
    t = time.perf_counter()
    single = [tool.call(q) for q in queries[:single_n]]
    single_qps = single_n / (time.perf_counter() - t)

    hits = tool.index.search(queries, k=1)
    recall = sum(bool(h) and h[0].index == want for (want, _), h in zip(pairs, hits)) / len(pairs)
    return {"load_s": load_s, "batch_qps": batch_qps, "single_qps": single_qps, "recall_at_1": recall,
            "batch_equals_single": batched[:single_n] == single, "peak_rss_mb": _rss_mb()}


def worker_ours_ray(a: argparse.Namespace) -> dict:
    """Through the Ray tool pool, as the environment calls it: a turn's calls at once vs one by one."""
    import ray

    from orchestrator.tools.base import ToolCall
    from orchestrator.tools.pool import PoolOptions, build_router

    queries = [q for _, q in _load_queries(a)]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        cfg = {"_target_": "orchestrator.tools.search.WikiSearch", "name": "Wiki", "index_dir": a.index, "cache_size": 0}
        router = build_router([cfg], PoolOptions(num_actors=1))
        router.call([ToolCall("Wiki", q) for q in queries[:8]])
        t = time.perf_counter()
        for i in range(0, len(queries), a.batch_size):
            router.call([ToolCall("Wiki", q) for q in queries[i : i + a.batch_size]])
        batch_qps = len(queries) / (time.perf_counter() - t)
        single_n = min(len(queries), a.single_queries)
        t = time.perf_counter()
        for q in queries[:single_n]:
            router.call([ToolCall("Wiki", q)])
        single_qps = single_n / (time.perf_counter() - t)
        router.shutdown()
    finally:
        ray.shutdown()
    return {"batch_qps": batch_qps, "single_qps": single_qps}


def _bm25s_tokens(texts: list[str]) -> list[list[str]]:
    from orchestrator.tools.search.index import BuildSettings

    s = BuildSettings()
    stop = set(s.tokenizer().stopwords)
    split = re.compile(s.splitter).findall
    return [[w for w in split(t.lower()) if w not in stop] for t in texts]


def _read_texts(path: str) -> list[str]:
    from orchestrator.tools.search.corpus import read_passages

    return [p.index_text() for p in read_passages(path)]


def worker_bm25s_inmemory(a: argparse.Namespace) -> dict:
    """bm25s's documented path: the whole corpus in memory, tokenize, index, save."""
    import bm25s

    from orchestrator.tools.search.index import BuildSettings

    anon = _AnonPeak()
    t = time.perf_counter()
    texts = _read_texts(a.corpus)
    tok = BuildSettings().tokenizer()
    ids = tok.tokenize(texts, update_vocab=True, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index((ids, tok.word_to_id), show_progress=False)
    retriever.save(a.index + "-bm25s", show_progress=False)
    return {"build_s": time.perf_counter() - t, "peak_rss_mb": _rss_mb(), "peak_anon_mb": anon.stop()}


def worker_rank_bm25(a: argparse.Namespace) -> dict:
    import numpy as np
    from rank_bm25 import BM25Okapi

    t = time.perf_counter()
    docs = _bm25s_tokens(_read_texts(a.corpus))
    bm25 = BM25Okapi(docs)
    build_s = time.perf_counter() - t

    pairs = _load_queries(a)[: a.baseline_queries]
    tokens = _bm25s_tokens([q for _, q in pairs])
    t = time.perf_counter()
    top = [int(np.argmax(bm25.get_scores(q))) for q in tokens]
    qps = len(pairs) / (time.perf_counter() - t)
    recall = sum(want == got for (want, _), got in zip(pairs, top)) / len(pairs)
    return {"build_s": build_s, "single_qps": qps, "recall_at_1": recall, "queries_timed": len(pairs), "peak_rss_mb": _rss_mb()}


WORKERS = {
    "baseline": worker_baseline,
    "ours_build": worker_ours_build,
    "ours_query": worker_ours_query,
    "ours_ray": worker_ours_ray,
    "bm25s_inmemory": worker_bm25s_inmemory,
    "rank_bm25": worker_rank_bm25,
}


def run_worker(kind: str, **kwargs: object) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind] + [f"--{k.replace('_', '-')}={v}" for k, v in kwargs.items()]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "DISABLE_TQDM": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--queries", type=int, default=2000, help="queries timed in batches")
    p.add_argument("--single-queries", type=int, default=500, help="of those, timed one by one")
    p.add_argument("--baseline-queries", type=int, default=100, help="queries timed with rank_bm25 (slow)")
    p.add_argument("--batch-size", type=int, default=64, help="queries per call_batch (a turn of a rollout batch)")
    p.add_argument("--no-ray", dest="ray", action="store_false", help="skip the measurement through Ray actors")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    # worker mode (internal)
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    p.add_argument("--index", help=argparse.SUPPRESS)
    p.add_argument("--n-queries", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--queries-file", dest="queries_path", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a)))
        return

    machine = f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"# search benchmark on {machine}")
    base = run_worker("baseline")
    print(f"python + imports: {base['peak_rss_mb']:.0f} MB RSS, {base['peak_anon_mb']:.0f} MB anonymous (included in every peak below)")
    results: dict[str, object] = {"machine": machine, "baseline_rss_mb": base["peak_rss_mb"], "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="toolrl-bench-search-") as tmp:
        for n in a.sizes:
            corpus, index, qfile = Path(tmp) / f"corpus-{n}.jsonl", Path(tmp) / f"index-{n}", Path(tmp) / f"queries-{n}.json"
            t = time.perf_counter()
            qfile.write_text(json.dumps(make_corpus(corpus, n)))
            print(f"\n## {n:,} passages ({corpus.stat().st_size / 2**20:.0f} MB JSONL, generated in {time.perf_counter() - t:.0f}s)")
            common = dict(corpus=corpus, index=index, queries_file=qfile, n_queries=a.queries, single_queries=a.single_queries,
                          baseline_queries=a.baseline_queries, batch_size=a.batch_size)
            ours_b = run_worker("ours_build", **common)
            ours_q = run_worker("ours_query", **common)
            ours_r = run_worker("ours_ray", **common) if a.ray else None
            ref_b = run_worker("bm25s_inmemory", **common)
            naive = run_worker("rank_bm25", **common)
            results["sizes"][n] = {"ours_build": ours_b, "ours_query": ours_q, "bm25s_inmemory": ref_b, "rank_bm25": naive, "ours_ray": ours_r}  # type: ignore[index]
            print("| | build s | build peak RSS MB (anonymous) | batch q/s (x%d) | single q/s | recall@1 |" % a.batch_size)
            print("|---|---|---|---|---|---|")
            print(f"| ours: streaming build, WikiSearch on the mmap index | {ours_b['build_s']:.1f} "
                  f"| {ours_b['peak_rss_mb']:.0f} ({ours_b['peak_anon_mb']:.0f}) "
                  f"| {ours_q['batch_qps']:.0f} | {ours_q['single_qps']:.0f} | {ours_q['recall_at_1']:.3f} |")
            if ours_r:
                print(f"| ours through the Ray tool pool (1 actor) | | | {ours_r['batch_qps']:.0f} | {ours_r['single_qps']:.0f} | |")
            print(f"| bm25s in-memory `index()` | {ref_b['build_s']:.1f} | {ref_b['peak_rss_mb']:.0f} ({ref_b['peak_anon_mb']:.0f}) | | | |")
            print(f"| rank_bm25 BM25Okapi | {naive['build_s']:.1f} | {naive['peak_rss_mb']:.0f} | | {naive['single_qps']:.1f} "
                  f"| {naive['recall_at_1']:.3f} ({naive['queries_timed']} q) |")
            print(f"index on disk {ours_b['index_mb']:.1f} MB, vocab {ours_b['vocab']:,}, postings {ours_b['nnz']:,}; "
                  f"load {ours_q['load_s']:.2f}s; query process peak RSS {ours_q['peak_rss_mb']:.0f} MB; batch == single: {ours_q['batch_equals_single']}")
            above = base["peak_anon_mb"]
            print(f"ratios: single q/s ours/rank_bm25 = {ours_q['single_qps'] / naive['single_qps']:.0f}x; "
                  f"in-process batch/single = {ours_q['batch_qps'] / ours_q['single_qps']:.2f}x"
                  + (f"; through Ray batch/single = {ours_r['batch_qps'] / ours_r['single_qps']:.1f}x" if ours_r else "")
                  + f"; build anonymous memory above imports, ours/bm25s-in-memory = "
                  f"{(ours_b['peak_anon_mb'] - above) / max(1.0, ref_b['peak_anon_mb'] - above):.2f}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
