"""Model loading: a hub-style model without the protocol tokens gets them, and room for them."""

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from orchestrator.rollout.protocol import PROTOCOL_TOKENS
from orchestrator.models.loading import load_causal_lm
from orchestrator.models.policy import PolicyWithValue
from orchestrator.models.tokens import build_byte_tokenizer


def test_hub_style_model_gets_protocol_tokens(tmp_path):
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    plain = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>")
    plain.add_special_tokens({"eos_token": "<eos>"})
    GPT2LMHeadModel(GPT2Config(vocab_size=len(plain), n_positions=32, n_embd=16, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    plain.save_pretrained(tmp_path)

    tok, model = load_causal_lm(str(tmp_path))
    for marker in PROTOCOL_TOKENS:
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    assert model.get_input_embeddings().weight.shape[0] >= len(tok) > len(plain)
    assert tok.pad_token is not None
    # the resized model runs on the new ids
    ids = tok("1+1<request>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape[-1] >= len(tok)


def test_byte_tokenizer_round_trips_any_text():
    tok = build_byte_tokenizer(["<Calculator>"])
    text = "What is 13.1-3?\n\nünïcødé ✓ <request><Calculator>13.1-3<call>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.convert_tokens_to_ids("<Calculator>") in ids
    # tool output cannot smuggle protocol markers in
    split = tok("x<submit>", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert tok.convert_tokens_to_ids("<submit>") not in split


def test_value_head_initialisation_follows_the_seed():
    def head(seed):
        lm = GPT2LMHeadModel(GPT2Config(vocab_size=10, n_positions=8, n_embd=8, n_layer=1, n_head=2))
        torch.manual_seed(seed)
        return PolicyWithValue(lm).v_head.weight.detach().clone()

    assert torch.equal(head(1), head(1)) and not torch.equal(head(1), head(2))
