"""Can a tiny model learn the synthetic ToolBench data on a CPU? A self-contained probe.

Trains a small Llama (plain PyTorch loop, loss on ``model`` spans only) on synthetic
trajectories for a time budget, then writes each held-out step greedily and scores it with
:mod:`.metrics` (held-out tools only: functions the model never saw). The task's real
training goes through the project's SFT algorithm; this probe only sizes the data so a tiny
model can learn it, and gives the figures in docs/toolbench.md.

    python -m tasks.toolbench.learnability --minutes 12
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass

from orchestrator.models.copying import CopySpec, copy_batches, ordinary_ids, pretrain_copying
from orchestrator.models.copying import copy_loss as copy_loss_of
from tasks.toolbench.data import heldout_cases, load_trajectories, to_demonstrations
from tasks.toolbench.equivalence import trained_token_masks
from tasks.toolbench.metrics import aggregate, score_step
from tasks.toolbench.synthetic import SyntheticSpec
from tasks.toolbench.tokenizer import cached_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeConfig:
    minutes: float = 12.0
    n_train: int = 20000
    n_heldout: int = 200
    vocab_size: int = 2048
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    batch_tokens: int = 4096
    lr: float = 3e-3
    warmup_steps: int = 30
    max_new_tokens: int = 96
    # Held-out checks during training (seconds of training between them; 0: only at the end).
    eval_every_s: float = 0.0
    eval_cases: int = 60
    seed: int = 0
    query_style: str = "function"
    rename_rate: float = 0.5
    fuse_rate: float = 0.0
    rename_style: str = "words"
    max_offered: int = 2
    threads: int = 0  # torch threads (0: torch's default)
    # Weight of the loss on tokens the model does not write (system, query, observations), as
    # OpenAI's fine-tuning API's prompt_loss_weight: a model built from scratch has never learnt
    # to copy, and the prompt repeats each name (function list, then query).
    prompt_loss_weight: float = 0.0
    # Steps of copy pretraining before SFT (orchestrator/models/copying.py: random strings that
    # come back at random distances): a pretrained model can copy a string it never saw
    # (induction heads); a model built from scratch cannot, and a function name is such a string.
    # Not counted in ``minutes``.
    copy_steps: int = 0
    copy_length: int = 12
    copy_lr: float = 1e-3
    # Where to keep the model after its copying steps (loaded instead of training them again).
    copy_cache: str = ""
    # Weight of a copying loss added to every SFT step (a small copying batch beside the SFT
    # batch), so the copying learnt first is not lost while SFT learns the format.
    copy_mix: float = 0.0
    # Also write the held-out steps with the Action line limited to the offered functions
    # (tasks/toolbench/constrain.py) and score them as heldout_constrained/...
    constrain_actions: bool = False


def _batches(examples: list[tuple[list[int], list[bool]]], batch_tokens: int, rng: random.Random):
    """Length-sorted buckets shuffled: batches of similar lengths, about ``batch_tokens`` each."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    batches, current, longest = [], [], 0
    for i in order:
        longest = max(longest, len(examples[i][0]))
        if current and longest * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], len(examples[i][0])
        current.append(i)
    if current:
        batches.append(current)
    while True:
        rng.shuffle(batches)
        yield from batches


def run(cfg: ProbeConfig) -> dict[str, float]:
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    spec = SyntheticSpec(seed=cfg.seed, query_style=cfg.query_style, rename_rate=cfg.rename_rate,
                         fuse_rate=cfg.fuse_rate, rename_style=cfg.rename_style,
                         max_offered=cfg.max_offered)
    train = load_trajectories("synthetic", "train", n=cfg.n_train + cfg.eval_cases, synthetic=spec)
    # trajectories of the training distribution (training tools, renamed at the same rate) that
    # are never trained on: a copy that works on them but not on held-out tools does not generalise
    unseen_train, train = train[cfg.n_train:], train[: cfg.n_train]
    held = load_trajectories("synthetic", "heldout", n=cfg.n_heldout, synthetic=spec)
    demos = to_demonstrations(train)
    texts = ["".join(t for _, t in d) for d in demos]
    tok = cached_tokenizer(texts[:5000], cfg.vocab_size)
    examples = trained_token_masks(demos, tok)
    max_len = max(len(ids) for ids, _ in examples) + cfg.max_new_tokens
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.hidden, intermediate_size=4 * cfg.hidden, num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads, max_position_embeddings=max_len,
        tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id,
    ))
    params = sum(p.numel() for p in model.parameters())
    log.info("train: %d trajectories, %d tokens (mean %.0f); model %.2fM parameters",
             len(examples), sum(len(i) for i, _ in examples), sum(len(i) for i, _ in examples) / len(examples), params / 1e6)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.95))
    budget = cfg.minutes * 60
    start = time.perf_counter()
    step, seen = 0, 0
    batches = _batches(examples, cfg.batch_tokens, random.Random(cfg.seed))
    cases = heldout_cases(held)
    train_cases = heldout_cases(unseen_train)[: cfg.eval_cases]
    paused = 0.0  # seconds spent on held-out checks, not counted as training
    next_eval = cfg.eval_every_s
    model.train()
    copy_spec = CopySpec(steps=cfg.copy_steps, lr=cfg.copy_lr, max_length=cfg.copy_length, seed=cfg.seed)
    if cfg.copy_steps:
        if cfg.copy_cache and os.path.exists(cfg.copy_cache):
            model.load_state_dict(torch.load(cfg.copy_cache))
            log.info("copying model loaded from %s", cfg.copy_cache)
        else:
            t0 = time.perf_counter()
            pretrain_copying(model, tok, copy_spec, on_step=lambda step, loss: step % 50 == 0 and log.info(
                "copy step %d  loss %.4f", step, loss))
            log.info("copy pretraining: %.0f s", time.perf_counter() - t0)
            if cfg.copy_cache:
                torch.save(model.state_dict(), cfg.copy_cache)
        model.train()
        start = time.perf_counter()  # the budget is the SFT's
    # a small copying batch beside each SFT batch (copy_mix): a quarter of the SFT's tokens
    copier = copy_batches(ordinary_ids(tok), dataclasses.replace(copy_spec, batch_tokens=max(
        4 * cfg.copy_length, cfg.batch_tokens // 4)))
    while time.perf_counter() - start - paused < budget:
        if cfg.eval_every_s and time.perf_counter() - start - paused >= next_eval:
            t0 = time.perf_counter()
            shares = aggregate(_evaluate(model, tok, cases[: cfg.eval_cases], cfg.max_new_tokens), prefix="")
            shares |= aggregate(_evaluate(model, tok, train_cases, cfg.max_new_tokens), prefix="train_dist/")
            model.train()
            log.info("check at %.0fs, %d tokens: %s", t0 - start - paused, seen, " ".join(f"{k} {v:.2f}" for k, v in shares.items()))
            paused += time.perf_counter() - t0
            next_eval += cfg.eval_every_s
        idx = next(batches)
        width = max(len(examples[i][0]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id)
        weights = torch.zeros((len(idx), width))
        trained = torch.zeros((len(idx), width), dtype=torch.bool)
        attn = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            seq, mask = examples[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            attn[row, : len(seq)] = 1
            trained[row, : len(seq)] = torch.tensor(mask)
            weights[row, : len(seq)] = torch.where(trained[row, : len(seq)], 1.0, cfg.prompt_loss_weight)
        frac = min(1.0, (time.perf_counter() - start - paused) / budget)
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
        per_token = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
        target_weights = weights[:, 1:].reshape(-1)
        # normalised by the trained tokens, so weight 0 is the plain SFT loss
        loss = (per_token * target_weights).sum() / trained[:, 1:].sum().clamp(min=1)
        if cfg.copy_mix:
            copy_loss = copy_loss_of(model, *next(copier))
            loss = loss + cfg.copy_mix * copy_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += int(attn.sum())
        if step % 20 == 0:
            elapsed = time.perf_counter() - start - paused
            log.info("step %d  %.0fs  loss %.4f%s  %.0f tokens/s", step, elapsed, loss.item(),
                     f" (copy {copy_loss.item():.4f})" if cfg.copy_mix else "", seen / elapsed)
    train_seconds = time.perf_counter() - start - paused
    scores = _evaluate(model, tok, cases, cfg.max_new_tokens)
    result = aggregate(scores, prefix="heldout/") | {"train/seconds": train_seconds, "train/steps": float(step),
                                                     "train/tokens": float(seen), "model/parameters": float(params)}
    if cfg.constrain_actions:
        from tasks.toolbench.generate import constrained_steps

        texts = constrained_steps(model, tok, [c.prompt for c in cases], [c.functions for c in cases], cfg.max_new_tokens)
        for case, text in list(zip(cases, texts))[:3]:
            log.info("constrained step: wanted %s, wrote %r", case.reference.action, text[:160])
        result |= aggregate([score_step(t, c.reference, c.functions) for t, c in zip(texts, cases)],
                            prefix="heldout_constrained/")
    return result


def _evaluate(model, tok, cases, max_new_tokens: int, batch_size: int = 16):
    """Greedy steps for the cases, batched with left padding; each cut at its first end token."""
    import torch

    model.eval()
    tok.padding_side = "left"
    scores = []
    with torch.no_grad():
        for at in range(0, len(cases), batch_size):
            group = cases[at: at + batch_size]
            batch = tok([c.prompt for c in group], add_special_tokens=False, return_tensors="pt", padding=True)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            for case, row in zip(group, out[:, batch["input_ids"].shape[1]:]):
                text = tok.decode(row, skip_special_tokens=False)
                text = text.split(tok.eos_token)[0] + tok.eos_token if tok.eos_token in text else text.replace(tok.pad_token, "")
                scores.append(score_step(text, case.reference, case.functions))
                if not scores[-1].action_right and sum(not s.action_right for s in scores) <= 6:
                    log.info("wrong step: wanted %s, wrote %r", case.reference.action, text[:160])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(ProbeConfig()).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = run(ProbeConfig(**vars(args)))
    for key, value in result.items():
        log.info("%-28s %.4g", key, value)


if __name__ == "__main__":
    main()
