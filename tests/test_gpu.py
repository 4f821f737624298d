"""The GPU check: ``python3 -m pytest -m gpu -q tests/test_gpu.py`` on a machine with CUDA (a few
minutes). Skipped where torch sees no CUDA device; never needed by CI.

Runs the calculator for 3 steps with trainer.use_gpu=true on 1 GPU and on all of them, with the
tiny model and a GPT-2-small-shaped one (random weights, built here: no download), in float32
and bfloat16; checkpoints on the GPU and resumes on the CPU; checks the lean decoder's logits
against transformers on CUDA. The figures it prints belong in bench/RESULTS.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import make_cfg

pytestmark = [pytest.mark.gpu, pytest.mark.ray,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

GPT2_SHAPED = ["model.tiny.arch=gpt2", "model.tiny.n_layer=12", "model.tiny.n_embd=768", "model.tiny.n_head=12"]
SHORT_WARM_START = ["model.tiny.sft_steps=30", "model.tiny.sft_demos=2000"]


def _run(tmp_path: Path, name: str, *overrides: str) -> dict:
    from orchestrator.launch.experiment import run

    started = time.perf_counter()
    metrics = run(make_cfg([f"output_dir={tmp_path / name}", f"cache_dir={tmp_path / 'cache'}", "logger=none",
                            "trainer.max_steps=3", "trainer.eval_every=3", "task.spec.num_eval=64", *overrides]))
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/step_s" in r and "env/reward_mean" in r]
    print(f"\n[gpu] {name}: {time.perf_counter() - started:.0f} s wall, "
          f"{sum(r['time/step_s'] for r in steps) / max(len(steps), 1):.2f} s/step, "
          f"{sum(r['perf/tokens_per_s'] for r in steps) / max(len(steps), 1):.0f} rollout tokens/s, "
          f"eval {metrics.get('eval/accuracy', float('nan')):.3f}")
    return metrics


@pytest.mark.parametrize("workers", ["1", "all"])
@pytest.mark.parametrize("shape", ["tiny", "gpt2"])
def test_ppo_steps_on_gpus(tmp_path, local_ray, workers, shape):
    n = 1 if workers == "1" else torch.cuda.device_count()
    extra = GPT2_SHAPED + SHORT_WARM_START if shape == "gpt2" else SHORT_WARM_START
    metrics = _run(tmp_path, f"{shape}-{n}gpu", "trainer.use_gpu=true", f"trainer.num_workers={n}",
                   f"trainer.batch_size={16 * n}", *extra)
    assert metrics["step"] == 3 and metrics["dist/world_size"] == n and metrics["dist/param_digest_spread"] == 0.0


def test_bf16_run_and_a_gpu_checkpoint_resumed_on_the_cpu(tmp_path, local_ray):
    first = _run(tmp_path, "bf16", "trainer.use_gpu=true", "model.dtype=bfloat16", *SHORT_WARM_START)
    assert first["step"] == 3
    second = _run(tmp_path, "resumed-on-cpu", "trainer.use_gpu=false", "trainer.max_steps=4",
                  f"trainer.resume={first['checkpoint']}", *SHORT_WARM_START)
    assert second["step"] == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lean_decoder_logits_match_transformers_on_cuda(dtype):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from orchestrator.rollout.lean_decoder import lean_decoder_for
    from orchestrator.rollout.sampler import positions_from_mask

    torch.manual_seed(0)
    models = {
        "llama": LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                                              num_attention_heads=4, max_position_embeddings=256)),
        "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=256, n_embd=256, n_layer=4, n_head=4)),
    }
    tolerance = 1e-3 if dtype == torch.float32 else 5e-2
    for name, model in models.items():
        model = model.to("cuda", dtype).eval()
        ids = torch.randint(1, 300, (4, 40), device="cuda")
        mask = torch.ones_like(ids)
        mask[0, :10] = 0  # left padding
        positions = positions_from_mask(mask)
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1].float()
            decoder = lean_decoder_for(model)
            got = decoder.start(ids, mask, positions, 64, [None] * 4).float()
        error = (got - expected).abs().max().item()
        print(f"\n[gpu] lean decoder {name} {dtype}: max |logit difference| {error:.2e}")
        assert error < tolerance * max(1.0, expected.abs().max().item())
