"""Check that ``format=packed`` trains what ``format=toolbench`` trains, and measure the saving.

Both formats are rendered with one template and scored by one causal model: the summed
negative log-likelihood of the trained tokens must agree (the same (context, target) pairs,
each trajectory's prefix encoded once instead of once per step). Tokens are trained when all
their characters lie in a ``model`` span, the rule of the generic SFT tokenization.

    python -m tasks.toolbench.equivalence      # the figures in docs/toolbench.md
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from typing import Any

from tasks.toolbench.render import Demonstration

log = logging.getLogger(__name__)


def trained_token_masks(demos: list[Demonstration], tokenizer: Any) -> list[tuple[list[int], list[bool]]]:
    """Per demonstration: the token ids of its text and, per token, whether the loss covers it
    (one batched tokenizer call)."""
    texts = ["".join(t for _, t in demo) for demo in demos]
    encodings = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for demo, ids, offsets in zip(demos, encodings["input_ids"], encodings["offset_mapping"]):
        spans, at = [], 0
        for source, piece in demo:
            if source == "model":
                spans.append((at, at + len(piece)))
            at += len(piece)
        mask = [any(a <= start and end <= b for a, b in spans) and end > start for start, end in offsets]
        if not any(mask):
            raise ValueError("a demonstration with no trained token")
        out.append((ids, mask))
    return out


def trained_token_mask(demo: Demonstration, tokenizer: Any) -> tuple[list[int], list[bool]]:
    return trained_token_masks([demo], tokenizer)[0]


@dataclass(frozen=True)
class FormatScore:
    instances: int
    characters: int
    tokens: int
    trained_tokens: int
    summed_nll: float
    seconds: float  # forward + backward over the whole set, one instance at a time


def score(demos: list[Demonstration], model: Any, tokenizer: Any, backward: bool = False) -> FormatScore:
    """Summed NLL of the trained tokens (each predicted from all tokens before it)."""
    import torch
    import torch.nn.functional as F

    total, tokens, trained, chars = 0.0, 0, 0, 0
    start = time.perf_counter()
    for demo in demos:
        ids, mask = trained_token_mask(demo, tokenizer)
        chars += sum(len(t) for _, t in demo)
        tokens += len(ids)
        # Logits only where a trained token is predicted: position t predicts token t + 1.
        positions = torch.tensor([t for t in range(len(ids) - 1) if mask[t + 1]])
        targets = torch.tensor([ids[t + 1] for t in positions.tolist()])
        with torch.set_grad_enabled(backward):
            logits = model(input_ids=torch.tensor([ids]), logits_to_keep=positions).logits[0]
            loss = F.cross_entropy(logits.double(), targets, reduction="sum")
            if backward:
                loss.backward()
        total += loss.item()
        trained += len(targets)
    return FormatScore(len(demos), chars, tokens, trained, total, time.perf_counter() - start)


def tiny_random_model(tokenizer: Any, hidden: int = 64, layers: int = 2, heads: int = 4,
                      max_positions: int = 8192, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval()


def compare_on_sample(
    vocab_size: int = 2048, backward: bool = False, groups: tuple[str, ...] = ("G1_answer", "G2_answer", "G3_answer"),
    **model_shape: int,
) -> dict[str, FormatScore]:
    """Both formats of the ToolBench sample (13 valid trees in ``groups``), one tokenizer,
    one random model."""
    from tasks.toolbench.convert import convert_answers
    from tasks.toolbench.formats import find_answer_files, read_answer_file
    from tasks.toolbench.paths import toolbench_sample_dir
    from tasks.toolbench.render import render
    from tasks.toolbench.tokenizer import train_tokenizer

    answers = [read_answer_file(f) for g in groups for f in find_answer_files(toolbench_sample_dir() / "answer" / g)]
    demos = {fmt: [render(c) for c in convert_answers(answers, fmt)] for fmt in ("toolbench", "packed")}
    tokenizer = train_tokenizer(("".join(t for _, t in d) for d in demos["packed"]), vocab_size)
    model = tiny_random_model(tokenizer, **model_shape)
    return {fmt: score(d, model, tokenizer, backward=backward) for fmt, d in demos.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=2048)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scores = compare_on_sample(args.vocab_size, backward=True)
    tb, pk = scores["toolbench"], scores["packed"]
    log.info("%-10s %9s %11s %9s %9s %14s %9s", "format", "instances", "characters", "tokens", "trained", "summed NLL", "fwd+bwd s")
    for name, s in scores.items():
        log.info("%-10s %9d %11d %9d %9d %14.6f %9.2f", name, s.instances, s.characters, s.tokens, s.trained_tokens, s.summed_nll, s.seconds)
    log.info("relative NLL difference %.2e; packed/toolbench: characters %.3f, tokens %.3f, time %.3f",
             abs(tb.summed_nll - pk.summed_nll) / abs(tb.summed_nll), pk.characters / tb.characters,
             pk.tokens / tb.tokens, pk.seconds / tb.seconds)


if __name__ == "__main__":
    main()
