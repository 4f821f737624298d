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


def test_lora_trains_adapters_only_and_exports_a_plain_model(tmp_path):
    """model.lora: peft adapters are the only trainable weights; the checkpoint is the merged model,
    which from_pretrained loads without peft and which computes what the adapted model computes."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from orchestrator.config.schema import LoraSpec
    from orchestrator.models.loading import exportable, load_weights, prepare_for_training

    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=64))
    spec = type("M", (), {"gradient_checkpointing": True,
                          "lora": LoraSpec(r=4, alpha=8.0, dropout=0.0, target_modules=["q_proj", "v_proj"])})()
    adapted = prepare_for_training(lm, spec)
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # move the adapters off their zero start
        for n, p in adapted.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    ids = torch.randint(0, 40, (2, 10))
    expected = adapted(input_ids=ids).logits
    exportable(adapted).save_pretrained(tmp_path)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.allclose(plain(input_ids=ids).logits, expected, atol=1e-5)
    fresh = prepare_for_training(LlamaForCausalLM(lm.config), spec)  # a resume: merged weights under new adapters
    load_weights(fresh, plain)
    assert torch.allclose(fresh(input_ids=ids).logits, expected, atol=1e-5)


def test_rope_scaling_reaches_the_model_config(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=64)).save_pretrained(tmp_path)
    build_byte_tokenizer().save_pretrained(tmp_path)
    _, model = load_causal_lm(str(tmp_path), rope_scaling={"rope_type": "linear", "factor": 2.0})
    scaling = getattr(model.config, "rope_scaling", None) or getattr(model.config, "rope_parameters", {})
    assert scaling.get("factor") == 2.0 and model.config.max_position_embeddings == 128
