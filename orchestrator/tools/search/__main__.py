"""Command line for the search index.

    python -m orchestrator.tools.search build --corpus PATH --out DIR [--format auto|kilt|dpr|jsonl] [--strict]
    python -m orchestrator.tools.search query --index DIR [-k 3] [--max-chars 400] "who sang does he love you"
    python -m orchestrator.tools.search info --index DIR

``build`` exits 0 on success, 1 when ``--strict`` stopped at a bad line (the partial index is
saved beside ``--out`` as ``DIR.partial-<time>``; the message says where), 2 on a usage error
or when ``--out`` is a non-empty directory that holds no index of ours (nothing is deleted).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from orchestrator.tools.search.corpus import FORMATS
from orchestrator.tools.search.index import BuildSettings, PartialIndexError, SearchIndex, build_index, read_manifest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.tools.search", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build a BM25 index from a passage corpus")
    build.add_argument("--corpus", required=True, help="KILT JSON lines, DPR psgs_w100 .tsv, or {id, contents} JSONL (.gz read too)")
    build.add_argument("--out", required=True, help="index directory: missing, empty, or an index of ours (replaced when the build finishes)")
    build.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="corpus format (default: guess)")
    build.add_argument("--strict", action="store_true", help="stop at the first bad line (the passages before it are saved beside --out as DIR.partial-<time>)")
    build.add_argument("--chunk-size", type=int, default=10_000, help="passages tokenized per step (memory: ~1-6 kB each)")
    build.add_argument("--max-passages", type=int, default=None, help="index only the first N passages (for trials)")
    build.add_argument("--stopwords", default="en", choices=("en", "none"), help="stop words to drop (default: en)")
    build.add_argument("--k1", type=float, default=BuildSettings.k1, help="BM25 k1")
    build.add_argument("--b", type=float, default=BuildSettings.b, help="BM25 b")
    build.add_argument("--store-chars", type=int, default=BuildSettings.store_chars, help="characters of each first paragraph kept")
    build.add_argument("--quiet", action="store_true", help="no progress bars")

    query = sub.add_parser("query", help="search an index from the terminal")
    query.add_argument("--index", required=True)
    query.add_argument("-k", type=int, default=1, help="hits to show")
    query.add_argument("--max-chars", type=int, default=400, help="characters shown per hit")
    query.add_argument("text", nargs="+", help="the query")

    info = sub.add_parser("info", help="print an index's manifest")
    info.add_argument("--index", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "build":
        settings = BuildSettings(k1=args.k1, b=args.b, stopwords=args.stopwords, store_chars=args.store_chars)
        try:
            report = build_index(args.corpus, args.out, fmt=args.format, settings=settings, strict=args.strict,
                                 chunk_size=args.chunk_size, max_passages=args.max_passages, progress=not args.quiet)
        except PartialIndexError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{report.passages} passages, {report.vocab} terms, {report.nnz} postings, {report.bad_lines} bad lines skipped; "
              f"{report.build_seconds:.1f}s, peak RSS {report.peak_rss_mb:.0f} MB -> {args.out}")
        return 0
    if args.command == "query":
        index = SearchIndex(args.index)
        for rank, hit in enumerate(index.search([" ".join(args.text)], k=args.k)[0], start=1):
            print(f"{rank}. [{hit.score:.2f}] {hit.id} {hit.title!r}\n   {hit.text[: args.max_chars]}")
        return 0
    print(json.dumps(read_manifest(args.index), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
