"""Search benchmark: index build time, queries/s (batch and single) and peak memory; ours beside
``bm25s``'s own in-memory build and ``retrieve``, and ``rank_bm25`` (the naive baseline), in one run.

    python bench/search.py                              # 10k and 100k passages (~4 min on 2 cores)
    python bench/search.py --sizes 1000000 --build-only # memory per million passages

Passages are synthetic, made from the shared corpora: the words of
shared/data/{mini_wiki_corpus,flashrag_sample_data}.jsonl drawn with their own frequencies
(Zipf-like, as in Wikipedia), 100 words per passage as in DPR's psgs_w100, plus two made-up
"names" per passage drawn from a pool as large as the corpus (so the vocabulary grows as a
real one does, and each passage has distinctive words).

Queries: throughput is timed on real TriviaQA questions (shared/data/triviaqa_dpr_test.tsv),
whose words are what a policy will send. Recall@1 is checked on synthetic queries (one
name and five words of a random passage, so that passage is the right answer).

Every measurement runs in its own subprocess so that its peak memory is its own: ``ru_maxrss``
(which counts pages of memory-mapped files: the index being written, scratch files being read,
all of which the kernel may drop) and the peak of ``RssAnon`` sampled every 20 ms (the memory
the process really needs).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _shared_data() -> Path:
    for candidate in (os.environ.get("TOOLRL_SHARED_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"):
        if candidate and (Path(candidate) / "mini_wiki_corpus.jsonl").is_file():
            return Path(candidate)
    raise SystemExit("shared/data not found; set TOOLRL_SHARED_DATA")


WORDS_PER_PASSAGE = 100


# ---------------------------------------------------------------- synthetic corpus and queries


def _source_words(shared: Path) -> tuple[list[str], list[int]]:
    counts: dict[str, int] = {}
    for name in ("mini_wiki_corpus.jsonl", "flashrag_sample_data.jsonl"):
        with open(shared / name, encoding="utf-8") as f:
            for line in f:
                for w in re.findall(r"[A-Za-z][A-Za-z'-]+|\d+", json.loads(line)["contents"]):
                    counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=counts.__getitem__, reverse=True)
    return words, list(itertools.accumulate(counts[w] for w in words))


def _name(rng: random.Random) -> str:
    syllables = ("ka", "lo", "mi", "ren", "tu", "sa", "vor", "el", "din", "qua", "br", "ix", "om", "pe", "zu", "thal")
    return "".join(rng.choice(syllables) for _ in range(rng.randint(3, 5))).capitalize()


def make_corpus(path: Path, n: int, shared: Path, n_queries: int, seed: int = 0) -> list[tuple[int, str]]:
    """Write ``n`` passages as ``{"id","contents":"Title\\ntext"}`` JSONL; return (passage, query) pairs."""
    rng = random.Random(seed)
    words, cum = _source_words(shared)
    total = cum[-1]
    names = [_name(rng) for _ in range(max(1000, n))]
    asked = set(rng.sample(range(n), min(n, n_queries)))
    queries: list[tuple[int, str]] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            body = [words[bisect.bisect(cum, rng.random() * total)] for _ in range(WORDS_PER_PASSAGE)]
            own = rng.sample(names, 2)
            for name in own:
                body[rng.randrange(len(body))] = name
            f.write(json.dumps({"id": str(i), "contents": f"{own[0]} {words[rng.randrange(2000)]}\n{' '.join(body)}"}) + "\n")
            if i in asked:
                queries.append((i, " ".join([own[1], *rng.sample(body, 5)])))
    return queries


def trivia_questions(shared: Path, n: int) -> list[str]:
    with open(shared / "triviaqa_dpr_test.tsv", encoding="utf-8", newline="") as f:
        return [row[0] for row in itertools.islice(csv.reader(f, delimiter="\t"), n)]


# ---------------------------------------------------------------- measuring


class _AnonPeak:
    """Peak of RssAnon (/proc/self/status), sampled every 20 ms from a thread."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak_kb / 1024


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def _qps(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


# ---------------------------------------------------------------- workers (one per subprocess)


def worker_baseline(_: dict) -> dict:
    """Memory of a Python with our imports and nothing else (included in every peak)."""
    import bm25s  # noqa: F401
    import numpy  # noqa: F401
    import rank_bm25  # noqa: F401

    import orchestrator.tools.search  # noqa: F401

    return {"peak_rss_mb": _rss_mb(), "peak_anon_mb": _AnonPeak().stop()}


def worker_ours_build(w: dict) -> dict:
    from orchestrator.tools.search.index import build_index

    anon = _AnonPeak()
    t = time.perf_counter()
    report = build_index(w["corpus"], w["index"], progress=False)
    build_s = time.perf_counter() - t
    return {"build_s": build_s, "peak_rss_mb": _rss_mb(), "peak_anon_mb": anon.stop(), "index_mb": _dir_mb(Path(w["index"])),
            "vocab": report.vocab, "nnz": report.nnz}


def worker_ours_query(w: dict) -> dict:
    from orchestrator.tools.search import WikiSearch

    questions, recall_pairs, batch = w["questions"], w["recall"], w["batch_size"]
    t = time.perf_counter()
    tool = WikiSearch(w["index"], cache_size=0)
    load_s = time.perf_counter() - t
    index = tool.index
    # the tool raises for a question with no indexed word; time the ones a batch answers whole
    questions = [q for q, ids in zip(questions, index.query_ids(questions)) if ids]
    tool.call_batch(questions[:8])  # warm the page cache, as a running actor is

    t = time.perf_counter()
    batched: list[str] = []
    for i in range(0, len(questions), batch):
        batched += tool.call_batch(questions[i : i + batch])
    batch_qps = _qps(len(questions), time.perf_counter() - t)

    single_n = min(len(questions), w["single_queries"])
    t = time.perf_counter()
    single = [tool.call(q) for q in questions[:single_n]]
    single_qps = _qps(single_n, time.perf_counter() - t)

    # bm25s's own retrieve (numpy backend) on the same token ids, for comparison
    ids = index.query_ids(questions[: w["single_queries"]])
    t = time.perf_counter()
    index.retriever.retrieve(ids, k=1, show_progress=False)
    bm25s_qps = _qps(len(ids), time.perf_counter() - t)

    hits = index.search([q for _, q in recall_pairs], k=1)
    recall = sum(bool(h) and h[0].index == want for (want, _), h in zip(recall_pairs, hits)) / len(recall_pairs)
    return {"load_s": load_s, "batch_qps": batch_qps, "single_qps": single_qps, "bm25s_retrieve_qps": bm25s_qps,
            "recall_at_1": recall, "batch_equals_single": batched[:single_n] == single, "peak_rss_mb": _rss_mb()}


def worker_ours_ray(w: dict) -> dict:
    """Through the Ray tool pool, as the environment calls it: a turn's calls at once vs one by one."""
    import ray

    from orchestrator.tools.base import ToolCall
    from orchestrator.tools.pool import PoolOptions, build_router
    from orchestrator.tools.search import SearchIndex

    questions, batch = w["questions"], w["batch_size"]
    questions = [q for q, ids in zip(questions, SearchIndex(w["index"]).query_ids(questions)) if ids]  # as worker_ours_query
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        cfg = {"_target_": "orchestrator.tools.search.WikiSearch", "name": "Wiki", "index_dir": w["index"], "cache_size": 0}
        router = build_router([cfg], PoolOptions(num_actors=1))
        router.call([ToolCall("Wiki", q) for q in questions[:8]])
        t = time.perf_counter()
        for i in range(0, len(questions), batch):
            router.call([ToolCall("Wiki", q) for q in questions[i : i + batch]])
        batch_qps = _qps(len(questions), time.perf_counter() - t)
        single_n = min(len(questions), w["single_queries"])
        t = time.perf_counter()
        for q in questions[:single_n]:
            router.call([ToolCall("Wiki", q)])
        single_qps = _qps(single_n, time.perf_counter() - t)
        router.shutdown()
    finally:
        ray.shutdown()
    return {"batch_qps": batch_qps, "single_qps": single_qps}


def _read_texts(path: str) -> list[str]:
    from orchestrator.tools.search.corpus import read_passages

    return [p.index_text() for p in read_passages(path)]


def worker_bm25s_inmemory(w: dict) -> dict:
    """bm25s's documented path: the whole corpus in memory, tokenize, index, save."""
    import bm25s

    from orchestrator.tools.search.index import BuildSettings

    anon = _AnonPeak()
    t = time.perf_counter()
    texts = _read_texts(w["corpus"])
    tokenizer = BuildSettings().tokenizer()
    ids = tokenizer.tokenize(texts, update_vocab=True, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index((ids, tokenizer.word_to_id), show_progress=False)
    retriever.save(w["index"] + "-bm25s", show_progress=False)
    return {"build_s": time.perf_counter() - t, "peak_rss_mb": _rss_mb(), "peak_anon_mb": anon.stop()}


def worker_rank_bm25(w: dict) -> dict:
    import numpy as np
    from rank_bm25 import BM25Okapi

    from orchestrator.tools.search.index import BuildSettings

    tokenizer = BuildSettings().tokenizer()
    stop, split = set(tokenizer.stopwords), tokenizer.splitter

    def tokens(texts: list[str]) -> list[list[str]]:
        return [[t for t in split(text.lower()) if t not in stop] for text in texts]

    anon = _AnonPeak()
    t = time.perf_counter()
    bm25 = BM25Okapi(tokens(_read_texts(w["corpus"])))
    build_s = time.perf_counter() - t
    peak_anon = anon.stop()

    questions = tokens(w["questions"][: w["baseline_queries"]])
    t = time.perf_counter()
    for q in questions:
        int(np.argmax(bm25.get_scores(q)))
    qps = _qps(len(questions), time.perf_counter() - t)
    pairs = w["recall"][: w["baseline_queries"]]
    top = [int(np.argmax(bm25.get_scores(q))) for q in tokens([q for _, q in pairs])]
    recall = sum(want == got for (want, _), got in zip(pairs, top)) / len(pairs)
    return {"build_s": build_s, "single_qps": qps, "recall_at_1": recall, "queries_timed": len(questions),
            "peak_rss_mb": _rss_mb(), "peak_anon_mb": peak_anon}


WORKERS = {
    "baseline": worker_baseline,
    "ours_build": worker_ours_build,
    "ours_query": worker_ours_query,
    "ours_ray": worker_ours_ray,
    "bm25s_inmemory": worker_bm25s_inmemory,
    "rank_bm25": worker_rank_bm25,
}


def run_worker(kind: str, job: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--job", str(job)], check=True, capture_output=True,
                         text=True, env={**os.environ, "DISABLE_TQDM": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def _print_size(n: int, r: dict, batch: int, base: dict) -> None:
    ob, oq, rr, ref, naive = r["ours_build"], r.get("ours_query"), r.get("ours_ray"), r["bm25s_inmemory"], r.get("rank_bm25")
    print(f"| | build s | build peak RSS MB (anonymous) | q/s batch of {batch} | q/s one by one | recall@1 |")
    print("|---|---|---|---|---|---|")
    q = f"| {oq['batch_qps']:.0f} | {oq['single_qps']:.0f} | {oq['recall_at_1']:.3f} |" if oq else "| | | |"
    print(f"| ours: streaming build; WikiSearch on the mmap index | {ob['build_s']:.1f} "
          f"| {ob['peak_rss_mb']:.0f} ({ob['peak_anon_mb']:.0f}) {q}")
    if rr:
        print(f"| ours through the Ray tool pool (1 actor) | | | {rr['batch_qps']:.0f} | {rr['single_qps']:.0f} | |")
    bq = f"| {oq['bm25s_retrieve_qps']:.0f} | | |" if oq else "| | | |"
    print(f"| bm25s: in-memory `index()`; `retrieve()` numpy backend | {ref['build_s']:.1f} "
          f"| {ref['peak_rss_mb']:.0f} ({ref['peak_anon_mb']:.0f}) {bq}")
    if naive:
        print(f"| rank_bm25 BM25Okapi | {naive['build_s']:.1f} | {naive['peak_rss_mb']:.0f} ({naive['peak_anon_mb']:.0f}) | | "
              f"{naive['single_qps']:.1f} | {naive['recall_at_1']:.3f} ({naive['queries_timed']} q) |")
    print(f"\nindex on disk {ob['index_mb']:.1f} MB, vocabulary {ob['vocab']:,}, postings {ob['nnz']:,}")
    above = base["peak_anon_mb"]
    ratios = [f"build anonymous memory above imports, ours / bm25s in-memory = "
              f"{(ob['peak_anon_mb'] - above) / max(1.0, ref['peak_anon_mb'] - above):.2f}"]
    if oq:
        print(f"load {oq['load_s']:.2f}s; query process peak RSS {oq['peak_rss_mb']:.0f} MB; "
              f"batch answers == single answers: {oq['batch_equals_single']}")
        ratios += [f"q/s one by one, ours / bm25s retrieve = {oq['single_qps'] / oq['bm25s_retrieve_qps']:.1f}x",
                   f"in-process batch / one by one = {oq['batch_qps'] / oq['single_qps']:.2f}x"]
    if oq and naive:
        ratios.append(f"q/s one by one, ours / rank_bm25 = {oq['single_qps'] / naive['single_qps']:.0f}x")
    if rr:
        ratios.append(f"through Ray, batch / one by one = {rr['batch_qps'] / rr['single_qps']:.1f}x")
    print("ratios: " + "; ".join(ratios))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="passages in each synthetic corpus")
    p.add_argument("--queries", type=int, default=2000, help="TriviaQA questions timed in batches")
    p.add_argument("--single-queries", type=int, default=500, help="of those, timed one by one")
    p.add_argument("--baseline-queries", type=int, default=100, help="questions timed with rank_bm25 (slow)")
    p.add_argument("--batch-size", type=int, default=64, help="queries per call_batch (one turn of a rollout batch)")
    p.add_argument("--build-only", action="store_true", help="only the two bm25s builds (for large sizes)")
    p.add_argument("--no-ray", dest="ray", action="store_false", help="skip the measurement through Ray actors")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](json.loads(a.job.read_text()))))
        return

    shared = _shared_data()
    machine = f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"# search benchmark on {machine}")
    with tempfile.TemporaryDirectory(prefix="toolrl-bench-search-") as tmp:
        base_job = Path(tmp) / "base.json"
        base_job.write_text("{}")
        base = run_worker("baseline", base_job)
        print(f"python + imports: {base['peak_rss_mb']:.0f} MB RSS, {base['peak_anon_mb']:.0f} MB anonymous (inside every peak below)")
        results: dict = {"machine": machine, "baseline": base, "sizes": {}}
        questions = trivia_questions(shared, a.queries)
        for n in a.sizes:
            corpus, index = Path(tmp) / f"corpus-{n}.jsonl", Path(tmp) / f"index-{n}"
            t = time.perf_counter()
            recall = make_corpus(corpus, n, shared, n_queries=a.queries)
            print(f"\n## {n:,} passages ({corpus.stat().st_size / 2**20:.0f} MB JSONL, generated in {time.perf_counter() - t:.0f}s)\n")
            job = Path(tmp) / f"job-{n}.json"
            job.write_text(json.dumps({
                "corpus": str(corpus), "index": str(index), "questions": questions, "recall": recall,
                "single_queries": a.single_queries, "baseline_queries": a.baseline_queries, "batch_size": a.batch_size,
            }))
            r: dict = {"ours_build": run_worker("ours_build", job)}
            if not a.build_only:
                r["ours_query"] = run_worker("ours_query", job)
                if a.ray:
                    r["ours_ray"] = run_worker("ours_ray", job)
            r["bm25s_inmemory"] = run_worker("bm25s_inmemory", job)
            if not a.build_only:
                r["rank_bm25"] = run_worker("rank_bm25", job)
            results["sizes"][n] = r
            _print_size(n, r, a.batch_size, base)
            corpus.unlink()
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
