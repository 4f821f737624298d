"""Command line: score answer files with any judge; print the table, save what it decided.

    python -m tasks.toolbench.tooleval sopr --answers ANSWERS --judge rules --explain
    python -m tasks.toolbench.tooleval pass-rate --answers ANSWERS --runs 7 \\
        --judge openai --base-url http://127.0.0.1:8000/v1 --judge-model M --cache judge_cache.jsonl
    python -m tasks.toolbench.tooleval win-rate --reference A --candidate B --metric sopr --judge rules
    python -m tasks.toolbench.tooleval sopr --answers ANSWERS --judge replay --replay out/verdicts.jsonl

ANSWERS is a folder of raw answer trees (``G1_answer/<id>_..._DFS_woFilter_w2.json``), a
converted file or a folder of them. ``--out DIR`` writes report.md, metrics.json, labels.txt
(one explained line per label) and verdicts.jsonl (what ``--judge replay`` reads).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tasks.toolbench.tooleval.evaluate import METRICS, EvalReport, evaluate_pass, evaluate_win
from tasks.toolbench.tooleval.inputs import load_answers
from tasks.toolbench.tooleval.judges import KINDS, RecordingJudge, build_judge


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.toolbench.tooleval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sopr", "pass-rate", "win-rate"):
        p = sub.add_parser(name)
        if name == "win-rate":
            p.add_argument("--reference", required=True, help="the reference's answers")
            p.add_argument("--candidate", required=True, help="the candidate's answers")
            p.add_argument("--metric", choices=METRICS, default="sopr",
                           help="pass-rate step feeding the win rate (sopr: StableToolBench, pass_rate: ToolBench)")
            p.add_argument("--rounds", type=int, default=2, help="win-rate rounds (ToolEval: 2)")
        else:
            p.add_argument("--answers", required=True)
            p.add_argument("--model", default=None, help="name of the answer set (default: the folder's)")
        p.add_argument("--runs", type=int, default=None,
                       help="judge runs per answer (SoPR default 3; ToolEval's pass rate default 4)")
        p.add_argument("--queries", default=None, help="query file(s) giving relevant APIs (the rules judge uses them)")
        p.add_argument("--method", default="DFS_woFilter_w2", help="answer-file name part to read")
        p.add_argument("--judge", choices=KINDS, default="rules")
        p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
        p.add_argument("--judge-model", default=None, help="model name sent to the endpoint")
        p.add_argument("--call-style", choices=("tools", "functions"), default="tools")
        p.add_argument("--api-key-env", default="OPENAI_API_KEY")
        p.add_argument("--cache", default=None, help="JSONL request cache (a rerun sends no request)")
        p.add_argument("--replay", default=None, help="verdicts.jsonl for --judge replay")
        p.add_argument("--seed", type=int, default=0, help="seed of every coin flip and the judge's request seed")
        p.add_argument("--workers", type=int, default=8, help="judge calls in flight at once")
        p.add_argument("--out", default=None, help="folder for report.md, metrics.json, labels.txt, verdicts.jsonl")
        p.add_argument("--explain", action="store_true", help="print one line per label")
    return parser


def _judge(args: argparse.Namespace):
    if args.judge == "openai":
        return build_judge("openai", base_url=args.base_url, model=args.judge_model, call_style=args.call_style,
                           api_key_env=args.api_key_env, cache_path=args.cache, seed=args.seed)
    if args.judge == "replay":
        return build_judge("replay", path=args.replay)
    return build_judge("rules")


def _save(report: EvalReport, judge: RecordingJudge, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report.markdown() + "\n")
    (out / "metrics.json").write_text(json.dumps(report.metrics(), indent=1, sort_keys=True) + "\n")
    (out / "labels.txt").write_text("\n".join(report.labels) + "\n")
    judge.write(out / "verdicts.jsonl")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    judge = RecordingJudge(_judge(args))
    load = dict(method=args.method, queries=args.queries, seed=args.seed)
    if args.command == "win-rate":
        reference = load_answers(args.reference, model="reference", **load)
        candidate = load_answers(args.candidate, model="candidate", **load)
        sides = [evaluate_pass(answers, judge, metric=args.metric, runs=args.runs, seed=args.seed,
                               max_workers=args.workers) for answers in (reference, candidate)]
        report = evaluate_win(reference, candidate, judge, reference_report=sides[0], candidate_report=sides[1],
                              rounds=args.rounds, seed=args.seed, max_workers=args.workers)
        for side, name in zip(sides, ("reference", "candidate")):
            for row in side.rows:
                row.metric = f"{row.metric}:{name}"
        report.rows = sides[0].rows + sides[1].rows + report.rows
    else:
        answers = load_answers(args.answers, model=args.model, **load)
        metric = "sopr" if args.command == "sopr" else "pass_rate"
        report = evaluate_pass(answers, judge, metric=metric, runs=args.runs, seed=args.seed, max_workers=args.workers)
    print(report.markdown())
    if report.cost:
        print("\njudge cost: " + ", ".join(f"{k}={v}" for k, v in report.cost.items()))
    if args.explain:
        print("\n" + "\n".join(report.labels))
    if args.out:
        _save(report, judge, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
