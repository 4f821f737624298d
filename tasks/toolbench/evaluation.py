"""``mode=eval`` for ToolBench: search each query over the virtual API server, then judge.

1. (``infer.retriever``) open-domain queries: the APIs offered are the top ``retrieve_k`` of a
   retriever over every API of the query file, not the query's own ``api_list``;
2. DFSDT or ReAct on Ray (tasks/toolbench/inference/runner.py): one answer file per query in
   ToolBench's format under ``<output_dir>/answers/<query set>/``, finished queries skipped
   when the command is run again;
3. ToolEval (tasks/toolbench/tooleval): SoPR or the pass rate with the ``rules`` judge (offline,
   deterministic), an OpenAI-compatible judge, or verdicts replayed from a file.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("toolrl")


def query_set_name(queries: str) -> str:
    return Path(queries).stem if ("/" in queries or queries.endswith(".json")) else queries


def with_retrieved_apis(queries: list[Any], query_path: Path, kind: str, model_path: str | None, k: int) -> list[Any]:
    """The queries with ``api_list`` replaced by the retriever's top ``k`` over the file's APIs."""
    from tasks.toolbench.retriever.build import build_retriever, corpus_from_query_files

    corpus = corpus_from_query_files([query_path])
    records = {doc.api_id: doc.record for doc in corpus}
    retriever = build_retriever(kind, corpus, model_path=model_path)
    found = retriever.retrieve_many([q.query for q in queries], k) if hasattr(retriever, "retrieve_many") else \
        [retriever.retrieve(q.query, k) for q in queries]
    return [dataclasses.replace(q, api_list=tuple(records[i] for i in ids)) for q, ids in zip(queries, found)]


def evaluate(spec: Any, ctx: Any) -> dict[str, float]:
    from tasks.toolbench.inference.queries import load_queries, query_file
    from tasks.toolbench.inference.runner import run_evaluation
    from tasks.toolbench.tooleval.evaluate import evaluate_pass
    from tasks.toolbench.tooleval.inputs import load_answers
    from tasks.toolbench.tooleval.judges import build_judge

    infer = ctx.cfg.infer
    if ctx.model_path is None:
        raise ValueError("mode=eval needs a model to evaluate: model=local model.pretrained=<checkpoint>/model "
                         "(or a hub model, model=gpt2)")
    path = query_file(spec.queries)
    queries: Any = spec.queries
    if infer.retriever:
        if path is None:
            raise ValueError(f"infer.retriever needs a query file; {spec.queries!r} is not one")
        queries = with_retrieved_apis(load_queries(spec.queries, spec.num_queries), path, infer.retriever,
                                      infer.retriever_model, infer.retrieve_k)
    answers_dir = ctx.output_dir / "answers" / query_set_name(spec.queries)
    metrics = run_evaluation(
        queries,
        policy_cfg={"kind": "hf", "path": ctx.model_path, "template": spec.template, "temperature": infer.temperature,
                    "max_new_tokens": infer.max_new_tokens, "constrain_actions": infer.constrain_actions},
        search_cfg={"method": infer.method, "width": infer.width, "max_depth": infer.max_depth,
                    "depth_unit": infer.depth_unit, "max_query_count": infer.max_query_count, "pass_at": infer.pass_at},
        server_cfg={"query_files": [str(path)]} if path is not None else {},
        output_dir=answers_dir, seed=ctx.seed, num_queries=spec.num_queries,
        runner_cfg={"num_workers": infer.num_workers, "queries_per_batch": infer.queries_per_batch})
    options: dict[str, Any] = {}
    if infer.judge == "openai":
        options = {"base_url": infer.judge_base_url, "model": infer.judge_model,
                   "cache_path": str(ctx.output_dir / "judge_cache.jsonl"), "seed": ctx.seed}
    elif infer.judge == "replay":
        options = {"path": infer.judge_replay}
    answers = load_answers(ctx.output_dir / "answers", queries=str(path) if path else None, seed=ctx.seed,
                           method=_method_name(infer))
    report = evaluate_pass(answers, build_judge(infer.judge, **options), metric=infer.judge_metric,
                           runs=infer.judge_runs, seed=ctx.seed)
    (ctx.output_dir / "judge.md").write_text(report.markdown())
    log.info("%s", report.markdown())
    return {**metrics, **report.metrics()}


def _method_name(infer: Any) -> str:
    from tasks.toolbench.inference.search import SearchConfig

    return SearchConfig(method=infer.method, width=infer.width, pass_at=infer.pass_at).method_name
