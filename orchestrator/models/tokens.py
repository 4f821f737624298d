"""Tokenizers: the byte-level one built offline, and the protocol's special tokens."""

from __future__ import annotations

from typing import Any, Sequence

from orchestrator.rollout.protocol import PROTOCOL_TOKENS

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def add_protocol_tokens(tokenizer: Any, model: Any = None, extra_tokens: Sequence[str] = ()) -> int:
    """Register the protocol markers (and ``extra_tokens``, e.g. ``<Calculator>``) as single
    tokens; give the model rows for them when it lacks them. Returns how many were added.

    Special tokens make generation stop on ids and keep markers out of the tool text path. A new
    row starts as the mean of the embeddings of its own text's pieces (``<request>`` as the
    tokenizer read it before: ``<``, ``request``, ``>``): four markers initialised alike (the
    mean of all rows, transformers' default) would look the same to a hub model.
    """
    wanted = [t for t in (*PROTOCOL_TOKENS, *extra_tokens) if t not in tokenizer.get_vocab()]
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in wanted}
    added = tokenizer.add_special_tokens({"additional_special_tokens": list(PROTOCOL_TOKENS)}, replace_extra_special_tokens=False) \
        if _accepts_replace(tokenizer) else tokenizer.add_special_tokens({"additional_special_tokens": list(PROTOCOL_TOKENS)})
    if extra_tokens:
        added += tokenizer.add_tokens(list(extra_tokens), special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        old_rows = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        init_rows_from_pieces(model, {tokenizer.convert_tokens_to_ids(t): ids for t, ids in pieces.items()}, old_rows)
    return added


def init_rows_from_pieces(model: Any, pieces: dict[int, list[int]], old_rows: int) -> None:
    """Each new token id's input (and untied output) row := the mean of its pieces' rows."""
    import torch

    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(output.weight)
    with torch.no_grad():
        for weight in matrices:
            fallback = weight[:old_rows].mean(0)
            for new_id, ids in pieces.items():
                ids = [i for i in ids if i < old_rows]
                weight[new_id] = weight[ids].mean(0) if ids else fallback


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
