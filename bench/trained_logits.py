"""An SFT step with logits at every position against logits only at trained positions.

    python bench/trained_logits.py [--steps 12] [--batch 16] [--threads 2] [--no-append]

The tiny ToolBench model's shape (Llama, 2 layers of width 128, tied embeddings) on batches of
synthetic ToolBench trajectories of similar lengths, as `trainer.group_by_length` makes them,
with the 2,048-token BPE tokenizer trained here. Both ways run the same batches, alternately,
each step a forward, a backward and an AdamW step; the script checks that their summed
negative log-likelihoods agree, prints the seconds a step and the ratio, and appends them to
bench/RESULTS.md with the machine (orchestrator/models/trained_logits.py says why).
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402


def batches(n_batches: int, batch: int) -> tuple[list, int, float]:
    """Batches of (ids, attention, weights) from one sorted pool, and the vocabulary size and the
    share of positions that are trained."""
    import torch

    from tasks.toolbench.data import load_trajectories, to_demonstrations
    from tasks.toolbench.equivalence import trained_token_masks
    from tasks.toolbench.synthetic import SyntheticSpec
    from tasks.toolbench.tokenizer import cached_tokenizer

    demos = to_demonstrations(load_trajectories("synthetic", "train", n=1000, synthetic=SyntheticSpec(seed=0)))
    tok = cached_tokenizer(["".join(t for _, t in d) for d in demos], 2048)
    examples = sorted(trained_token_masks(demos, tok), key=lambda e: len(e[0]))
    share = sum(sum(m) for _, m in examples) / sum(len(i) for i, _ in examples)
    rng = random.Random(0)
    out = []
    for _ in range(n_batches):
        start = rng.randrange(0, len(examples) - batch)
        rows = examples[start : start + batch]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((batch, width), tok.pad_token_id)
        attention = torch.zeros((batch, width), dtype=torch.long)
        weights = torch.zeros((batch, width))
        for r, (seq, mask) in enumerate(rows):
            ids[r, : len(seq)] = torch.tensor(seq)
            attention[r, : len(seq)] = 1
            weights[r, : len(seq)] = torch.tensor(mask, dtype=torch.float)
        out.append((ids, attention, weights[:, 1:]))
    return out, len(tok), share


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="steps of each way (after 2 warm-up steps each)")
    parser.add_argument("--batch", type=int, default=16, help="trajectories a step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    from orchestrator.models.trained_logits import next_token_nll

    torch.set_num_threads(args.threads)
    data, vocab, share = batches(args.steps + 2, args.batch)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                                         tie_word_embeddings=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def full(ids, attention, weights):
        logits = model(input_ids=ids, attention_mask=attention).logits
        logp = F.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return -(logp * weights).sum()

    def selected(ids, attention, weights):
        return next_token_nll(lambda: model(input_ids=ids, attention_mask=attention).logits, model, ids, weights)

    with torch.no_grad():
        a, b = float(full(*data[0])), float(selected(*data[0]))
    assert abs(a - b) <= 1e-4 * abs(a), (a, b)
    seconds: dict[str, list[float]] = {"full": [], "selected": []}
    for i, batch in enumerate(data):
        for name, loss_of in (("full", full), ("selected", selected)):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_of(*batch).backward()
            optimizer.step()
            if i >= 2:
                seconds[name].append(time.perf_counter() - start)
    t_full, t_sel = statistics.median(seconds["full"]), statistics.median(seconds["selected"])
    tokens = statistics.mean(int(b[1].sum()) for b in data)
    line = (f"{args.batch} trajectories a step (~{tokens:.0f} tokens), {share:.0%} of positions trained: "
            f"full logits {t_full:.3f} s/step, trained positions only {t_sel:.3f} s/step "
            f"({t_full / t_sel:.2f}x); summed NLL {a:.2f} vs {b:.2f}")
    print(line)
    if not args.no_append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(f"\n## SFT step: logits only at trained positions (bench/trained_logits.py), {stamp}\n\n"
                    f"{machine()}; {args.threads} threads, the tiny ToolBench Llama, medians of {args.steps} "
                    f"steps each, alternating.\n\n- {line}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
