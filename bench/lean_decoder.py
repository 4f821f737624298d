"""Rollouts through the lean decoder against the same sampler through the transformers forward.

    python bench/lean_decoder.py [--shape tiny|gpt2] [--batch-size 16] [--repeats 3] [--threads 1]

``tiny``: the default tiny calculator model (built once, then cached) on bare prompts, as the
default run samples. ``gpt2``: a randomly initialised model shaped like GPT-2 small (12 layers,
768 wide, 12 heads; our byte tokenizer, so no hub access) on the seed experiment's few-shot
prompt, as ``model=gpt2`` samples. Both paths share one generator seed per repeat, so they
draw the same tokens (checked) and only the time differs. Paths alternate; medians are
printed and appended to bench/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine_info import machine  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("tiny", "gpt2"), default="tiny")
    parser.add_argument("--batch-size", type=int, default=16, help="episodes per rollout (default: 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rollouts per path after one warm-up (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/RESULTS.md")
    return parser.parse_args(argv)


def build(shape: str) -> tuple[object, object, bool]:
    """(tokenizer, model, few_shot) for the shape."""
    from hydra import compose, initialize_config_dir
    import hydra.utils

    from orchestrator.config import CONF_DIR
    from orchestrator.models.loading import load_causal_lm, prepare_model

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["task=calculator", "model=tiny", "seed=0"])
    task = hydra.utils.instantiate(cfg.task.spec)
    tokenizer, model = load_causal_lm(prepare_model(cfg.model, task, str(Path(cfg.cache_dir).expanduser())))
    if shape == "tiny":
        return tokenizer, model.eval(), False
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    return tokenizer, GPT2LMHeadModel(config).eval(), True


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    import torch

    from orchestrator.config.schema import EnvConfig
    from orchestrator.rollout.environment import TextEnvironment
    from orchestrator.rollout.sampler import SamplingParams
    from orchestrator.tools.local import LocalRouter
    from orchestrator.task import problem_meta
    from tasks.calculator import CalculatorTask

    torch.set_num_threads(args.threads)
    tokenizer, model, few_shot = build(args.shape)
    task = CalculatorTask()
    problems = list(task.eval_problems())[: args.batch_size]
    prompts = [task.prompt(p, few_shot) for p in problems]
    metas = [problem_meta(p) for p in problems]
    router = LocalRouter.from_configs(task.tools())
    config = EnvConfig(max_turns=2, max_new_tokens=32, max_tool_response=400, max_length=512 if few_shot else 96)
    prompt_tokens = sum(len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"])
    print(f"[{args.shape}] {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, B={args.batch_size}, "
          f"{prompt_tokens / len(prompts):.0f} prompt tokens per episode", flush=True)

    times: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(args.repeats + 1):
        tokens = {}
        for lean in (True, False):
            env = TextEnvironment(tokenizer, router, task.reward, config, lean_decoder=lean)
            start = time.perf_counter()
            episodes = env.rollout(model, prompts, metas, SamplingParams(1.0), torch.Generator().manual_seed(repeat))
            seconds = time.perf_counter() - start
            tokens[lean] = [ep.ids for ep in episodes]
            if repeat:
                times[lean].append(seconds)
            print(f"  #{repeat}{' (warm-up)' if not repeat else ''} {'lean' if lean else 'transformers'}: {seconds:.3f} s, "
                  f"{sum(ep.num_model_tokens for ep in episodes)} model tokens", flush=True)
        same = tokens[True] == tokens[False]
        print(f"  same episodes on both paths: {same}", flush=True)
    lean_s, hf_s = statistics.median(times[True]), statistics.median(times[False])
    line = (f"- `{args.shape}` ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters), B={args.batch_size}, "
            f"{prompt_tokens / len(prompts):.0f} prompt tokens per episode, {args.threads} thread(s): lean {lean_s:.3f} s, "
            f"transformers {hf_s:.3f} s per rollout (medians of {args.repeats}); **{hf_s / lean_s:.2f}x**; "
            f"same episodes on both paths: {same}")
    print(line)
    if not args.no_append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with (REPO / "bench" / "RESULTS.md").open("a") as f:
            f.write(f"\n### lean_decoder — {stamp} — {machine()}\n"
                    f"Command: `python bench/lean_decoder.py {' '.join(argv)}`\n\n{line}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
