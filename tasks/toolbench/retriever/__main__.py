"""Command line: evaluate a retriever, or fine-tune the dense one on Ray Train.

    python -m tasks.toolbench.retriever eval --retriever bm25
    python -m tasks.toolbench.retriever eval --retriever dense --model outputs/retriever/model --split test
    python -m tasks.toolbench.retriever train --out outputs/retriever --workers 2 --epochs 1

Queries default to StableToolBench's six solvable-query files (``--queries`` takes other
query files or folders); the corpus is every API those files offer. ``--split train|test``
keeps one side of the seeded 80/20 split by query (``train`` trains on the 80%).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _files(paths: list[str] | None) -> list[Path]:
    from tasks.toolbench.tooldocs import stabletoolbench_query_files

    files: list[Path] = []
    for p in map(Path, paths or []):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    return files or list(map(Path, stabletoolbench_query_files()))


def _queries(files: list[Path]):
    from tasks.toolbench.formats import read_query_file
    from tasks.toolbench.retriever.corpus import build_corpus, retrieval_queries

    by_file = {f.stem: read_query_file(f) for f in files}
    corpus = build_corpus([q for qs in by_file.values() for q in qs])
    return corpus, [rq for group, qs in by_file.items() for rq in retrieval_queries(qs, group)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.toolbench.retriever", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("eval", "train"):
        p = sub.add_parser(name)
        p.add_argument("--queries", nargs="*", default=None, help="query files or folders")
        p.add_argument("--split", choices=("all", "train", "test"), default="all" if name == "eval" else "train")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--test-fraction", type=float, default=0.2)
        p.add_argument("--doc-tokens", type=int, default=64)
        p.add_argument("--gpu", action="store_true")
    ev = sub.choices["eval"]
    ev.add_argument("--retriever", choices=("bm25", "dense"), default="bm25")
    ev.add_argument("--model", default=None, help="sentence-transformers folder (dense; default: untrained MiniLM)")
    ev.add_argument("--by", choices=("level", "group"), default="level", help="rows per G1/G2/G3 or per test set")
    ev.add_argument("--corpus", choices=("shared", "per-file"), default="shared",
                    help="one corpus of every file's APIs, or each file's queries over its own APIs")
    tr = sub.choices["train"]
    tr.add_argument("--out", default="outputs/retriever")
    tr.add_argument("--base-model", default=None)
    tr.add_argument("--workers", type=int, default=2)
    tr.add_argument("--epochs", type=int, default=1)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=5e-5)
    tr.add_argument("--wandb", choices=("offline", "online", "disabled"), default="offline")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from tasks.toolbench.retriever.corpus import split_by_query

    files = _files(args.queries)

    def selected(queries):
        if args.split == "all":
            return queries
        train_q, test_q = split_by_query(queries, args.test_fraction, args.seed)
        return train_q if args.split == "train" else test_q

    if args.command == "eval":
        from tasks.toolbench.retriever.build import build_retriever
        from tasks.toolbench.retriever.metrics import markdown, score

        scopes = [[f] for f in files] if args.corpus == "per-file" else [files]
        all_queries, ranked = [], []
        for scope in scopes:
            corpus, queries = _queries(scope)
            queries = selected(queries)
            retriever = build_retriever(args.retriever, corpus, model_path=args.model,
                                        device="cuda" if args.gpu else "cpu", doc_tokens=args.doc_tokens)
            all_queries += queries
            ranked += retriever.retrieve_many([q.text for q in queries], 5)
        print(markdown([score(args.model or args.retriever, all_queries, ranked, by=args.by)]))
        return 0
    corpus, queries = _queries(files)
    queries = selected(queries)
    from tasks.toolbench.retriever.train import TrainConfig, train, training_pairs

    config = TrainConfig(output_dir=args.out, base_model=args.base_model, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, doc_tokens=args.doc_tokens,
                         num_workers=args.workers, use_gpu=args.gpu, seed=args.seed, wandb_mode=args.wandb)
    result = train(training_pairs(queries, corpus), config)
    print(f"model: {result.model_dir} ({result.seconds:.0f} s); last report: {result.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
