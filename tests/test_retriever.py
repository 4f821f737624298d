"""The API retriever: ToolBench's documents, the split by query, NDCG, BM25 against the
measured figures, the in-batch-negative loss (against sentence-transformers' and across two
gloo workers), and a few steps of Ray Train with 2 workers ending in a loadable checkpoint."""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
from pathlib import Path

import pytest
import torch

from tasks.toolbench.formats import read_query_file
from tasks.toolbench.retriever import build_retriever
from tasks.toolbench.retriever.corpus import api_document, build_corpus, retrieval_queries, split_by_query
from tasks.toolbench.retriever.metrics import ndcg_at_k, score
from tasks.toolbench.retriever.train import (GatherWithGrad, Pair, false_negative_mask, in_batch_loss, lr_at,
                                             training_pairs)


def query_files() -> list[Path]:
    try:
        from tasks.toolbench.tooldocs import stabletoolbench_query_files

        return stabletoolbench_query_files()
    except FileNotFoundError:
        return []


FILES = query_files()
needs_queries = pytest.mark.skipif(not FILES, reason="shared/data/stabletoolbench not found")


@pytest.fixture(scope="module")
def stb765():
    by_file = {f.stem: read_query_file(f) for f in FILES}
    corpus = build_corpus([q for qs in by_file.values() for q in qs])
    queries = [rq for group, qs in by_file.items() for rq in retrieval_queries(qs, group)]
    return corpus, queries


def test_ndcg_by_hand():
    rel = frozenset({("c", "t", "a"), ("c", "t", "b")})
    ranked = [("c", "t", "x"), ("c", "t", "a"), ("c", "t", "b")]
    assert ndcg_at_k(ranked, rel, 1) == 0.0
    # DCG@3 = 1/log2(3) + 1/log2(4); ideal = 1 + 1/log2(3)
    assert ndcg_at_k(ranked, rel, 3) == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(ranked[1:], rel, 5) == 1.0
    assert ndcg_at_k([("c", "t", "a")], frozenset({("c", "t", "a")}), 5) == 1.0


@needs_queries
def test_documents_corpus_and_split(stb765):
    corpus, queries = stb765
    assert len(corpus) == 2490 and len({d.api_id for d in corpus}) == 2490
    assert len(queries) == 765
    doc = corpus[0]
    assert doc.text == api_document(doc.record)
    assert doc.text.startswith(f"{doc.record.category_name}, {doc.record.tool_name}, {doc.record.api_name}, ")
    assert ", required_params: [" in doc.text and ", optional_params: [" in doc.text and ", return_schema: " in doc.text
    ids = {d.api_id for d in corpus}
    assert all(q.relevant and q.relevant <= ids for q in queries)
    train, test = split_by_query(queries, 0.2, seed=0)
    assert len(test) == sum(round(n * 0.2) for n in (153, 163, 158, 124, 106, 61))
    assert {(q.group, q.query_id) for q in train}.isdisjoint({(q.group, q.query_id) for q in test})
    again, _ = split_by_query(queries, 0.2, seed=0)
    other, _ = split_by_query(queries, 0.2, seed=1)
    assert [q.query_id for q in again] == [q.query_id for q in train] != [q.query_id for q in other]
    pairs = training_pairs(train, corpus)
    assert len(pairs) == sum(len(q.relevant) for q in train)
    assert all(p.doc_id in p.relevant_ids and corpus[p.doc_id].text == p.doc for p in pairs)


@needs_queries
def test_bm25_matches_the_measured_figures(stb765):
    corpus, queries = stb765
    retriever = build_retriever("bm25", corpus)
    ranked = retriever.retrieve_many([q.text for q in queries], 5)
    rows = score("bm25", queries, ranked).rows
    targets = {"overall": (63.0, 60.3), "G1": (65.4, 64.6), "G2": (62.2, 56.3), "G3": (47.5, 41.9)}
    for group, (at1, at5) in targets.items():
        assert rows[group][1] == pytest.approx(at1, abs=1.0), group
        assert rows[group][5] == pytest.approx(at5, abs=1.0), group
    assert retriever.retrieve(queries[0].text, 3) == ranked[0][:3]


def test_loss_is_sentence_transformers_multiple_negatives_ranking_loss():
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    q, d = torch.randn(6, 8), torch.randn(6, 8)
    mnrl = MultipleNegativesRankingLoss(model=torch.nn.Identity(), scale=20.0)
    expected = mnrl.compute_loss_from_embeddings([q, d], None)
    none = torch.zeros(6, 6, dtype=torch.bool)
    assert in_batch_loss(q, d, torch.arange(6), none, 20.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_false_negatives_are_masked():
    pairs = [Pair("q0", "a", 0, (0, 1)), Pair("q0", "b", 1, (0, 1)), Pair("q1", "a", 0, (0,))]
    mask = false_negative_mask(pairs, [0, 1, 0], offset=0)
    # q0's other relevant document (b, j=1) and the second copy of a (j=2) are not its negatives
    assert mask.tolist() == [[False, True, True], [True, False, True], [True, False, False]]
    assert [lr_at(s, 10, 2) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loss_and_grad(rank: int, world: int, port: int, out) -> None:
    """A linear encoder's gradient, with the batch split over ``world`` gloo processes."""
    import torch.distributed as dist

    torch.manual_seed(0)
    weight = torch.randn(5, 4, requires_grad=True)
    queries, docs = torch.randn(8, 5), torch.randn(8, 5)
    doc_ids = [0, 1, 2, 3, 0, 4, 5, 6]
    pairs = [Pair(f"q{i}", "", doc_ids[i], (doc_ids[i], 1) if i == 0 else (doc_ids[i],)) for i in range(8)]
    local = 8 // world
    mine = slice(rank * local, (rank + 1) * local)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    d = docs[mine] @ weight
    if world > 1:
        d = GatherWithGrad.apply(d)
    mask = false_negative_mask(pairs[mine], doc_ids, rank * local)
    loss = in_batch_loss(queries[mine] @ weight, d, torch.arange(rank * local, (rank + 1) * local), mask, 20.0)
    loss.backward()
    if world > 1:
        dist.all_reduce(weight.grad)
        weight.grad /= world
        dist.destroy_process_group()
    if rank == 0:
        out.put(weight.grad.tolist())


def test_two_workers_give_the_gradient_of_one_with_the_whole_batch():
    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pool started can hang
    queue = ctx.Queue()
    _loss_and_grad(0, 1, 0, queue)
    single = torch.tensor(queue.get())
    port = _free_port()
    procs = [ctx.Process(target=_loss_and_grad, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    double = torch.tensor(queue.get(timeout=60))
    for p in procs:
        p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    assert torch.allclose(single, double, atol=1e-6)


@pytest.mark.ray
@needs_queries
def test_ray_train_two_workers_a_few_steps(stb765, tmp_path, local_ray):
    from sentence_transformers import SentenceTransformer

    from tasks.toolbench.retriever.dense import DenseRetriever
    from tasks.toolbench.retriever.train import TrainConfig, train

    corpus, queries = stb765
    pairs = training_pairs(queries[:20], corpus)
    config = TrainConfig(output_dir=str(tmp_path / "run"), batch_size=4, max_steps=2, num_workers=2,
                         threads_per_worker=1, lr=1e-4, doc_tokens=32, query_tokens=32, wandb_mode="offline")
    result = train(pairs, config)  # on the session's shared 2-CPU cluster (tests/conftest.py)
    print(f"retriever training: {result.seconds:.1f} s in all, worker set-up {result.metrics['setup_s']:.1f} s, "
          f"2 steps {result.metrics['train_s']:.1f} s")
    assert result.metrics["step"] == 2 and math.isfinite(result.metrics["loss"])
    assert (result.model_dir / "model.safetensors").is_file() and (result.model_dir / "modules.json").is_file()
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    model = SentenceTransformer(str(result.model_dir), device="cpu")
    small = corpus[:50]
    dense = DenseRetriever(small, model=model, doc_tokens=32, query_tokens=32)  # a document finds itself
    top = dense.retrieve(small[7].text, 1)
    assert top == [small[7].api_id]


@needs_queries
def test_cli_evaluates_bm25_per_file_and_on_the_held_out_split(capsys):
    from tasks.toolbench.retriever.__main__ import main

    assert main(["eval", "--retriever", "bm25", "--split", "test"]) == 0
    held_out = capsys.readouterr().out
    assert "| bm25 |" in held_out and "overall: 154" in held_out
    assert main(["eval", "--retriever", "bm25", "--corpus", "per-file", "--by", "group"]) == 0
    per_file = capsys.readouterr().out
    assert "G1_tool @5" in per_file and "overall: 765" in per_file
