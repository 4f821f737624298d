"""The lean decoder computes what transformers computes, and the sampler draws the same tokens
with it as without it (orchestrator/lean_decoder.py is used for every Llama-family rollout)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from orchestrator.rollout.lean_decoder import lean_decoder_for
from orchestrator.rollout.sampler import SamplingParams, positions_from_mask, sample_turn

VOCAB = 48


def llama(kv_heads: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=128,
                         tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def qwen2() -> torch.nn.Module:
    """Biased q/k/v projections, grouped-query attention, untied head."""
    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=False, pad_token_id=0)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # random init leaves biases at zero; make them matter
        for layer in model.model.layers:
            layer.self_attn.q_proj.bias.normal_(0, 0.1)
            layer.self_attn.k_proj.bias.normal_(0, 0.1)
            layer.self_attn.v_proj.bias.normal_(0, 0.1)
    return model


def gpt2() -> torch.nn.Module:
    """Learned positions, LayerNorm with biases, Conv1D weights."""
    torch.manual_seed(2)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                                       bos_token_id=0, eos_token_id=0)).eval()
    with torch.no_grad():  # random init leaves biases and LayerNorm at identity; make them matter
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.02)
    return model


MODELS = {"llama": llama, "llama-gqa": lambda: llama(kv_heads=2), "qwen2": qwen2, "gpt2": gpt2}


def left_padded(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros((len(lengths), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        ids[r, width - n:] = torch.randint(1, VOCAB, (n,), generator=g)
        mask[r, width - n:] = 1
    return ids, mask


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_match_transformers_through_prefill_and_steps(name):
    model = MODELS[name]()
    decoder = lean_decoder_for(model)
    assert decoder is not None
    ids, mask = left_padded([7, 3, 5, 1])
    positions = positions_from_mask(mask)
    lean = decoder.start(ids, mask, positions, capacity=ids.shape[1] + 6)
    with torch.no_grad():
        for step in range(6):
            full = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits[:, -1]
            assert torch.allclose(lean, full, atol=1e-5), (step, (lean - full).abs().max())
            token = full.argmax(-1)
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            lean = decoder.step(token, positions_from_mask(mask)[:, -1])
            if step == 2:  # drop row 1 (as the sampler does with a finished row)
                keep = torch.tensor([0, 2, 3])
                decoder.keep(keep)
                ids, mask, lean = ids[keep], mask[keep], lean[keep]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_sampler_draws_the_same_tokens_with_and_without_it(name, temperature):
    """Rows of different lengths and budgets, stop ids that end rows at different steps (so the
    lean path carries finished rows and compacts later than the transformers path)."""
    model = MODELS[name]()
    sequences = [list(left_padded([n], seed=n)[0][0]) for n in (6, 2, 9, 4, 5, 3)]
    sequences = [[int(t) for t in s] for s in sequences]
    budgets = [12, 3, 0, 12, 7, 12]
    free = sample_turn(model, sequences, budgets, set(), 0, SamplingParams(temperature),
                       torch.Generator().manual_seed(3), lean=False)
    stops = {free[0][2], free[5][4]}  # row 0 stops by its third token at the latest
    runs = [sample_turn(model, sequences, budgets, stops, 0, SamplingParams(temperature),
                        torch.Generator().manual_seed(3), lean=lean) for lean in (True, False)]
    assert runs[0] == runs[1]
    assert [len(t) for t in runs[0]][2] == 0 and all(len(t) <= b for t, b in zip(runs[0], budgets))
    # rows ended at different steps, some on a stop id (the draws after the first stop differ
    # from the stop-free run: fewer rows draw from the generator)
    assert any(t and t[-1] in stops for t in runs[0]) and len({len(t) for t in runs[0]}) >= 3, runs[0]


def test_models_it_does_not_reproduce_use_the_transformers_forward():
    scaled_gpt2 = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=1, n_head=2,
                             scale_attn_by_inverse_layer_idx=True, bos_token_id=0, eos_token_id=0)
    assert lean_decoder_for(GPT2LMHeadModel(scaled_gpt2)) is None
    scaled = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, rope_scaling={"rope_type": "linear", "factor": 2.0})
    assert lean_decoder_for(LlamaForCausalLM(scaled)) is None
    biased_mlp = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, mlp_bias=True)
    assert lean_decoder_for(LlamaForCausalLM(biased_mlp)) is None


def test_sees_each_update_of_the_weights():
    """PPO changes the parameters between turns: the decoder reads them live, not a copy."""
    model = llama()
    ids, mask = left_padded([4, 4])
    positions = positions_from_mask(mask)
    decoder = lean_decoder_for(model)
    before = decoder.start(ids, mask, positions, capacity=8)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(3.0)
        model.model.layers[1].self_attn.k_proj.weight.add_(0.1)
        expected = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
    after = decoder.start(ids, mask, positions, capacity=8)
    assert not torch.allclose(before, after, atol=1e-3)
    assert torch.allclose(after, expected, atol=1e-5)


def test_draws_follow_the_distribution():
    """The sampler's inverse-CDF draw: frequencies match the softmax, top-k and zero-probability
    tokens are never drawn, temperature sharpens."""
    from orchestrator.rollout.sampler import _draw

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf"), 0.5]]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(_draw(logits, SamplingParams(1.0), g), minlength=6).float()
    expected = torch.softmax(logits[0], -1) * len(logits)
    assert counts[4] == 0
    # within 5 standard deviations of a binomial count, for every token
    assert ((counts - expected).abs() <= 5 * (expected * (1 - expected / len(logits))).sqrt() + 1).all(), (counts, expected)
    top2 = torch.bincount(_draw(logits, SamplingParams(1.0, top_k=2), g), minlength=6)
    assert top2[2:].sum() == 0 and top2[0] > top2[1] > 0
    cold = torch.bincount(_draw(logits, SamplingParams(0.25), g), minlength=6).float()
    assert cold[0] / len(logits) > 0.95


@pytest.mark.parametrize("name", sorted(MODELS))
def test_later_turns_continue_from_saved_keys_and_values(name):
    """Three turns with tool output appended between them and episodes leaving after each:
    the lean path encodes only what was appended, and draws what the re-encoding path draws."""
    from orchestrator.rollout.sampler import TurnSampler

    model = MODELS[name]()
    runs, widths = [], []
    for lean in (True, False):
        sampler = TurnSampler(model, {5, 11}, 0, SamplingParams(1.0), torch.Generator().manual_seed(7), lean=lean)
        if lean:
            start = sampler.decoder.start
            sampler.decoder.start = lambda ids, *a, **k: (widths.append(ids.shape[1]), start(ids, *a, **k))[1]
        episodes = {k: [int(t) for t in left_padded([3 + k], seed=k)[0][0]] for k in range(6)}
        active = list(range(6))
        for turn in range(3):
            new = sampler.sample([episodes[k] for k in active], [9] * len(active), keys=active)
            for k, tokens in zip(active, new):
                episodes[k] += tokens + [20 + k, 30 + turn, 40]  # the "tool output"
            active = [k for k in active if k % 3 != turn]
        runs.append(episodes)
    assert runs[0] == runs[1]
    # turn 1 encodes whole prompts (8 tokens at most); later turns only the last draw and the
    # 3 tokens of tool output, though the episodes are 12 to 30 tokens long by then
    assert widths[0] == 8 and widths[1:] == [4, 4], widths


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_common_prompt_beginning_is_encoded_once(name):
    from orchestrator.rollout.sampler import TurnSampler

    model = MODELS[name]()
    shared = [7, 3, 9, 9, 2]
    prompts = [shared + [int(t) for t in left_padded([n], seed=n)[0][0]] for n in (1, 4, 2, 6)]
    runs, widths = [], []
    for lean in (True, False):
        sampler = TurnSampler(model, {5}, 0, SamplingParams(1.0), torch.Generator().manual_seed(1), lean=lean)
        if lean:
            start = sampler.decoder.start
            sampler.decoder.start = lambda ids, *a, **k: (widths.append(tuple(ids.shape)), start(ids, *a, **k))[1]
        runs.append(sampler.sample(prompts, [6, 6, 6, 6]))
    assert runs[0] == runs[1]
    assert widths == [(1, 5), (4, 6)]  # the beginning once, then each row's own tokens
