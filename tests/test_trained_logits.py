"""Logits only at trained positions: the same numbers as the full head, for the model kinds
the project trains (Llama and GPT-2), and a clear error where a model has no head."""

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from orchestrator.models.trained_logits import logits_only_at, next_token_nll


def llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=32))


def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=32, n_layer=1, n_head=2, n_positions=32))


@pytest.mark.parametrize("build", [llama, gpt2])
def test_selected_logits_are_the_full_logits_there(build):
    model = build().eval()
    ids = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    keep = torch.rand(3, 10, generator=torch.Generator().manual_seed(2)) > 0.6
    with torch.no_grad():
        full = model(input_ids=ids).logits
        with logits_only_at(model, keep):
            selected = model(input_ids=ids).logits
        after = model(input_ids=ids).logits  # the hook is gone after the block
    assert selected.shape == (int(keep.sum()), 40)
    assert torch.allclose(selected, full[keep], atol=1e-5)
    assert after.shape == full.shape


@pytest.mark.parametrize("build", [llama, gpt2])
def test_next_token_nll_weighs_and_skips_positions(build):
    model = build().eval()  # GPT-2's dropout off: two passes give the same numbers
    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(3))
    weights = torch.zeros(2, 8)
    weights[0, 2:5] = 1.0
    weights[1, 6] = 0.5
    nll = next_token_nll(lambda: model(input_ids=ids).logits, model, ids, weights)
    logp = F.log_softmax(model(input_ids=ids).logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert float(nll) == pytest.approx(float(-(logp * weights).sum()), rel=1e-5)


def test_a_mismatched_mask_is_an_error_naming_both_shapes():
    model = llama()
    with pytest.raises(RuntimeError, match=r"\(2, 5, 32\).*\(2, 6\)"):
        with logits_only_at(model, torch.ones(2, 6, dtype=torch.bool)):
            model(input_ids=torch.zeros(2, 5, dtype=torch.long))
