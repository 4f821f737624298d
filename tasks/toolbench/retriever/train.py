"""Fine-tune a sentence encoder on (query, relevant API document) pairs with in-batch negatives,
on Ray Train (a ``TorchTrainer`` with N workers, CPU or GPU).

The loss is sentence-transformers' MultipleNegativesRankingLoss, the one ToolBench trains
its retriever with, written out here: for a batch of B pairs, the cosine similarities of
every query with every document, times ``scale`` (20), and cross-entropy towards the query's
own document. Two things are ours:

- the batch is global: each worker encodes its B/N pairs and the documents of all workers
  are gathered (the gradient flows back to the worker that encoded them), so N workers with
  B/N pairs each compute exactly the loss of one worker with B;
- a document relevant to a query but paired with another query in the batch (two relevant
  APIs of one query, or one API two queries need) is not counted as that query's negative.

Gradients are averaged across workers by one all-reduce of the flattened gradients after
``backward`` (rather than DDP's hooks), because each step runs the encoder twice (queries
and documents, cut to different lengths) before a single backward. Each worker reads the
same seeded shuffle of the pairs and takes its slice of every global batch.

Checkpoints are sentence-transformers folders (``SentenceTransformer(path)`` loads them);
the last one is copied to ``<output_dir>/model``. W&B: rank 0 logs ``retriever/loss`` and
``retriever/lr`` (offline unless ``wandb_mode`` says otherwise).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """``batch_size`` is the global batch (in-batch negatives see all of it); it must divide
    by ``num_workers``. ``warmup_ratio`` of the steps ramp the learning rate up, the rest
    decay it linearly to 0 (sentence-transformers' WarmupLinear)."""

    output_dir: str = "outputs/retriever"
    base_model: str | None = None
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    scale: float = 20.0
    doc_tokens: int = 64
    query_tokens: int = 128
    num_workers: int = 2
    use_gpu: bool = False
    threads_per_worker: int | None = None
    seed: int = 0
    max_steps: int | None = None
    wandb_mode: str = "offline"
    wandb_project: str = "toolrl-retriever"

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.batch_size % self.num_workers:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of num_workers ({self.num_workers})")
        if self.wandb_mode not in ("offline", "online", "disabled"):
            raise ValueError(f"wandb_mode must be offline, online or disabled, got {self.wandb_mode!r}")


@dataclass(frozen=True)
class Pair:
    """One training example: a query, one relevant document, and the ids of every document
    relevant to that query (so those are not used as its negatives)."""

    query: str
    doc: str
    doc_id: int
    relevant_ids: tuple[int, ...]


class GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums each rank's gradient and returns its own slice
    (every rank holds the same number of rows)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def in_batch_loss(q: torch.Tensor, d: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                  scale: float) -> torch.Tensor:
    """Cross-entropy of ``scale`` x cosine(q_i, d_j) towards ``targets``; ``mask[i, j]`` True
    removes document j from query i's candidates.  q: (b, h), d: (B, h), mask: (b, B)."""
    logits = scale * torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(d, dim=-1).T
    logits = logits.masked_fill(mask, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, targets)


def false_negative_mask(pairs: list[Pair], batch_doc_ids: list[int], offset: int) -> torch.Tensor:
    """(b, B): True where document j is relevant to query i but is not its own pair."""
    mask = torch.zeros(len(pairs), len(batch_doc_ids), dtype=torch.bool)
    for i, pair in enumerate(pairs):
        relevant = set(pair.relevant_ids)
        for j, doc_id in enumerate(batch_doc_ids):
            if j != offset + i and doc_id in relevant:
                mask[i, j] = True
    return mask


def features(model, texts: list[str], max_tokens: int, device: torch.device) -> dict[str, Any]:
    """The model's input for ``texts`` cut to ``max_tokens`` (sentence-transformers 6 calls it
    ``preprocess``, 5 ``tokenize``)."""
    model.max_seq_length = max_tokens
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in prepare(texts).items()}


def lr_at(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _all_reduce_mean(params: list[torch.nn.Parameter], world: int) -> None:
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    start = 0
    for p, g in zip(params, grads):
        n = g.numel()
        if p.grad is None:
            p.grad = flat[start:start + n].view_as(p).clone()
        else:
            p.grad.copy_(flat[start:start + n].view_as(p))
        start += n


def train_loop(loop_config: dict[str, Any]) -> None:
    """The per-worker loop Ray Train runs."""
    entered = time.time()
    import ray.train
    import ray.train.torch
    from sentence_transformers import SentenceTransformer

    from tasks.toolbench.retriever.dense import default_model_path

    cfg = TrainConfig(**loop_config["config"])
    pairs: list[Pair] = [Pair(*p[:3], tuple(p[3])) for p in loop_config["pairs"]]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    distributed = world > 1 and dist.is_available() and dist.is_initialized()
    threads = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // cfg.num_workers)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    device = ray.train.torch.get_device() if cfg.use_gpu else torch.device("cpu")
    model = SentenceTransformer(cfg.base_model or default_model_path(), device=str(device))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    per_epoch = len(pairs) // cfg.batch_size
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    if total < 1:
        raise ValueError(f"{len(pairs)} pairs make no batch of {cfg.batch_size}")
    warmup = int(cfg.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, total, warmup))
    run = None
    if rank == 0 and cfg.wandb_mode != "disabled":
        import wandb

        run = wandb.init(project=cfg.wandb_project, mode=cfg.wandb_mode, dir=cfg.output_dir, config=asdict(cfg),
                         reinit="finish_previous")
    local = cfg.batch_size // world
    step = 0
    started = time.time()
    setup_s = started - entered
    for epoch in range(cfg.epochs):
        order = list(range(len(pairs)))
        random.Random(f"{cfg.seed}|epoch|{epoch}").shuffle(order)
        for b in range(per_epoch):
            if step >= total:
                break
            batch = [pairs[i] for i in order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
            mine = batch[rank * local:(rank + 1) * local]
            q = model(features(model, [p.query for p in mine], cfg.query_tokens, device))["sentence_embedding"]
            d = model(features(model, [p.doc for p in mine], cfg.doc_tokens, device))["sentence_embedding"]
            if distributed:
                d = GatherWithGrad.apply(d)
            targets = torch.arange(rank * local, rank * local + len(mine), device=device)
            mask = false_negative_mask(mine, [p.doc_id for p in batch], rank * local).to(device)
            loss = in_batch_loss(q, d, targets, mask, cfg.scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if distributed:
                _all_reduce_mean(params, world)
                reported = loss.detach().clone()
                dist.all_reduce(reported)
                reported /= world
            else:
                reported = loss.detach()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if run is not None:
                run.log({"retriever/loss": reported.item(), "retriever/lr": scheduler.get_last_lr()[0],
                         "retriever/epoch": epoch}, step=step)
        metrics = {"epoch": epoch, "step": step, "loss": float(reported.item()),
                   "pairs_per_s": step * cfg.batch_size / max(1e-9, time.time() - started),
                   "setup_s": setup_s, "train_s": time.time() - started}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                model.save(tmp)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)
        if step >= total:
            break
    if run is not None:
        run.finish()


def training_pairs(queries, corpus) -> list[Pair]:
    """(query, document) pairs of ``queries`` (RetrievalQuery) over ``corpus`` (ApiDoc), in order."""
    index = {doc.api_id: i for i, doc in enumerate(corpus)}
    pairs = []
    for q in queries:
        relevant = tuple(sorted(index[a] for a in q.relevant))
        for doc_id in relevant:
            pairs.append(Pair(q.text, corpus[doc_id].text, doc_id, relevant))
    return pairs


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    metrics: dict[str, Any]
    checkpoint_dir: Path
    seconds: float


def train(pairs: list[Pair], config: TrainConfig) -> TrainResult:
    """Run the TorchTrainer; starts a local Ray if none is running (and leaves it to the caller)."""
    import ray
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    out = Path(config.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config.output_dir = str(out)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=max(config.num_workers, os.cpu_count() or 1), include_dashboard=False,
                 log_to_driver=False)
    started = time.time()
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"config": asdict(config),
                           "pairs": [(p.query, p.doc, p.doc_id, list(p.relevant_ids)) for p in pairs]},
        scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=config.use_gpu,
                                     resources_per_worker=None if config.use_gpu else {"CPU": 1}),
        torch_config=TorchConfig(backend="nccl" if config.use_gpu else "gloo"),
        run_config=RunConfig(name=f"retriever-{int(started)}", storage_path=str(out / "ray"),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"retriever training ended without a checkpoint: {result.error}")
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    with result.checkpoint.as_directory() as folder:
        shutil.copytree(folder, model_dir)
    return TrainResult(model_dir=model_dir, metrics=dict(result.metrics or {}),
                       checkpoint_dir=Path(result.checkpoint.path), seconds=time.time() - started)
