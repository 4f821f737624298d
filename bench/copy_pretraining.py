"""How long the tiny model takes to learn to copy (orchestrator/models/copying.py), by learning rate.

    python bench/copy_pretraining.py [--steps 800] [--lr 1e-3 2e-3] [--batch-tokens 4096] [--vocab 2048] [--threads 2]

The tiny model's shape (2 layers, width 128, 4 heads, Llama) over a vocabulary as large as the
ToolBench tokenizer's. The copy loss sits at ln(vocabulary) through a plateau, then falls as the
content match forms; the script prints the loss every 50 steps, the step where it first falls
below half of ln(vocabulary) and below 1.0, and the seconds a step, then appends them to
bench/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402


class _Vocabulary:
    """A tokenizer's length and special ids: all copying needs of one."""

    def __init__(self, size: int) -> None:
        self.size, self.all_special_ids = size, [0]

    def __len__(self) -> int:
        return self.size


def curve(steps: int, lr: float, vocab: int, batch_tokens: int) -> tuple[list[float], float]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from orchestrator.models.copying import CopySpec, pretrain_copying

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                                         tie_word_embeddings=True))
    start = time.perf_counter()
    losses = pretrain_copying(model, _Vocabulary(vocab), CopySpec(steps=steps, lr=lr, batch_tokens=batch_tokens))
    return losses, (time.perf_counter() - start) / steps


def first_below(losses: list[float], level: float, window: int = 25) -> int | None:
    for end in range(window, len(losses) + 1):
        if sum(losses[end - window: end]) / window < level:
            return end
    return None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3, 2e-3])
    parser.add_argument("--batch-tokens", type=int, default=4096, help="tokens a step (rows of 48)")
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    chance = math.log(args.vocab - 1)
    rows = []
    for lr in args.lr:
        losses, per_step = curve(args.steps, lr, args.vocab, args.batch_tokens)
        marks = [round(sum(losses[i: i + 50]) / len(losses[i: i + 50]), 2) for i in range(0, len(losses), 50)]
        half, one = first_below(losses, chance / 2), first_below(losses, 1.0)
        print(f"lr {lr:g}: {per_step:.3f} s/step; loss every 50 steps {marks}; below ln(V)/2 at {half}, below 1.0 at {one}")
        rows.append(f"| {lr:g} | {per_step:.3f} | {half} | {one} | {marks[-1]} |")
    if not args.no_append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        text = (f"\n## Copy pretraining (bench/copy_pretraining.py), {stamp}\n\n{machine()}; {args.threads} threads, "
                f"vocabulary {args.vocab} (ln V = {chance:.2f}), {args.steps} steps of {args.batch_tokens:,} tokens; the loss "
                f"averaged over 25 steps.\n\n| lr | s/step | below ln(V)/2 at step | below 1.0 at step | "
                f"last 50 steps' loss |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
