"""Tokenizers: the byte-level one built offline, and the protocol's special tokens."""

from __future__ import annotations

from typing import Any, Sequence

from orchestrator.env import PROTOCOL_TOKENS

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def add_protocol_tokens(tokenizer: Any, model: Any = None, extra_tokens: Sequence[str] = ()) -> int:
    """Register the protocol markers (and ``extra_tokens``, e.g. ``<Calculator>``) as single
    tokens; resize the model's embeddings when it lacks rows for them. Returns how many were added.

    Special tokens make generation stop on ids and keep markers out of the tool text path.
    """
    added = tokenizer.add_special_tokens({"additional_special_tokens": list(PROTOCOL_TOKENS)}, replace_extra_special_tokens=False) \
        if _accepts_replace(tokenizer) else tokenizer.add_special_tokens({"additional_special_tokens": list(PROTOCOL_TOKENS)})
    if extra_tokens:
        added += tokenizer.add_tokens(list(extra_tokens), special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return added


def _accepts_replace(tokenizer: Any) -> bool:
    import inspect

    try:
        return "replace_extra_special_tokens" in inspect.signature(tokenizer.add_special_tokens).parameters
    except (TypeError, ValueError):
        return False


def build_byte_tokenizer(extra_tokens: Sequence[str] = ()) -> Any:
    """A byte-level tokenizer with no merges: 256 byte tokens, pad/eos/unk, protocol markers.

    Every text is representable (unlike a character list), digits stay one token each (which
    the tiny model needs to copy numbers), and nothing is downloaded.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    add_protocol_tokens(tokenizer, extra_tokens=extra_tokens)
    return tokenizer
