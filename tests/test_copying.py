"""Copy pretraining (orchestrator/models/copying.py) and its place in the tiny model's recipe."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from orchestrator.models.copying import CopySpec, copy_batches, ordinary_ids, pretrain_copying


def test_each_row_repeats_one_string_at_a_random_distance_and_masks_what_a_copy_predicts():
    vocabulary = torch.arange(100, 164)
    spec = CopySpec(steps=1, max_length=12, batch_tokens=48 * 40, seed=3)
    ids, mask = next(copy_batches(vocabulary, spec))
    assert ids.shape == mask.shape == (40, 48)
    assert bool(((ids >= 100) & (ids < 164)).all())
    distances = set()
    for row, marked in zip(ids, mask):
        at = marked.nonzero().flatten().tolist()
        assert at == list(range(at[0], at[-1] + 1)) and 3 <= len(at) <= 11  # one run: the repeat less its first token
        repeat = list(range(at[0] - 1, at[-1] + 1))
        # some earlier string equals the repeat: find how far back it starts
        back = [d for d in range(len(repeat), repeat[0] + 1)
                if row[[i - d for i in repeat]].tolist() == row[repeat].tolist()]
        assert back, "the repeated string must occur earlier in the row"
        distances.add(back[0])
    # the distance varies: a fixed one would let a model copy by position instead of by content
    assert len(distances) > 10


def test_batches_follow_the_seed():
    vocabulary = torch.arange(50)
    a = next(copy_batches(vocabulary, CopySpec(steps=1, seed=1)))
    b = next(copy_batches(vocabulary, CopySpec(steps=1, seed=1)))
    c = next(copy_batches(vocabulary, CopySpec(steps=1, seed=2)))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize("bad", [dict(steps=-1), dict(max_length=3), dict(batch_tokens=10)])
def test_spec_rejects_what_cannot_work(bad):
    with pytest.raises(ValueError):
        CopySpec(**{"steps": 1, **bad})


def _tiny_llama(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64))


class _Tokenizer:
    """What copying needs of a tokenizer: its length and its special ids."""

    def __init__(self, size: int, special: list[int]) -> None:
        self.size, self.all_special_ids = size, special

    def __len__(self) -> int:
        return self.size


def test_ordinary_ids_leave_out_special_tokens():
    assert ordinary_ids(_Tokenizer(6, [0, 5])).tolist() == [1, 2, 3, 4]


def test_pretraining_trains_in_place_and_follows_the_seed():
    """The mechanism (how far the loss falls takes hundreds of steps past a plateau at
    ln(vocabulary): bench/copy_pretraining.py measures it)."""
    tokenizer = _Tokenizer(40, [0, 1])
    spec = CopySpec(steps=4, lr=3e-3, max_length=8, batch_tokens=32 * 8, seed=0)
    first, second, untouched = _tiny_llama(40), _tiny_llama(40), _tiny_llama(40)
    losses = pretrain_copying(first, tokenizer, spec)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses) and not first.training
    # near chance at the start: the repeats are what the loss is on, and nothing copies yet
    assert abs(losses[0] - math.log(40)) < 0.5
    pretrain_copying(second, tokenizer, spec)
    for a, b, c in zip(first.parameters(), second.parameters(), untouched.parameters()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), untouched.parameters()))


def test_the_tiny_models_cache_key_ignores_copying_while_it_is_off():
    """Models built before copy pretraining existed keep their cache; turning it on is a new model."""
    from orchestrator.config.schema import TinyRecipe
    from orchestrator.models.tiny import recipe_key

    class Task:
        def fingerprint(self):
            return {"name": "stub"}

    base = TinyRecipe(arch="llama", n_layer=2, n_embd=32, n_head=2, n_positions=64, sft_demos=10, sft_steps=5,
                      sft_batch_size=4, sft_lr=1e-3, sft_warmup_steps=1, seed=0)
    key = recipe_key(base, Task())
    assert recipe_key(dataclasses.replace(base, copy_lr=5e-3), Task()) == key
    assert recipe_key(dataclasses.replace(base, copy_steps=10), Task()) != key
    assert recipe_key(dataclasses.replace(base, copy_steps=10), Task(), trained=False) != recipe_key(base, Task(), trained=False)
