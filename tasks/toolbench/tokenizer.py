"""A BPE tokenizer trained here on the tool text, for the tiny model (HF ``tokenizers``).

Byte-level BPE, so any text encodes (no unknown token) and character offsets map back to the
text exactly, which the generic SFT tokenization needs. The template's markers are special
tokens: one id each, and a span boundary (prompt | model) always falls between tokens,
whatever text is around it. Trained once per (texts, vocab size, specials) and cached.

Words are cut as GPT-2 cuts them except that ``_`` stays with the letters after it:
``get_airports_by_city`` is ``get``, ``_airports``, ``_by``, ``_city``, not nine pieces of
which four are the same ``_``. A model copying a function name then follows distinct
tokens; with ``_`` alone, every step of the copy matches every ``_`` of the prompt.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tasks.toolbench.toolllama import ACTION, ACTION_INPUT, EOS, THOUGHT

log = logging.getLogger(__name__)

PAD = "<pad>"
# GPT-2's pre-tokenizer pattern with ``_`` allowed to start a word (and not a symbol run).
IDENTIFIER_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[_\p{L}]\p{L}*| ?\p{N}+| ?[^\s\p{L}\p{N}_]+|\s+(?!\S)|\s+"""


def toolllama_specials(eos: str = EOS) -> list[str]:
    """The markers of ``template=toolllama``: end, pad, role labels and step tags."""
    labels = ["System: ", "\nUser: ", "\nAssistant: ", "\nFunction: "]
    tags = ["\n" + THOUGHT, "\n" + ACTION, "\n" + ACTION_INPUT]
    return [eos, PAD, *labels, *tags]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, specials: Sequence[str] | None = None) -> Any:
    """A ``PreTrainedTokenizerFast``: byte-level BPE over ``texts`` with ``specials`` as single
    tokens (the first is the end token, ``<pad>`` the pad token when present)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(specials if specials is not None else toolllama_specials())
    if not specials:
        raise ValueError("specials: at least the end token is needed")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(IDENTIFIER_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(s, special=True, normalized=False) for s in specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=specials[0], clean_up_tokenization_spaces=False)
    fast.add_special_tokens({"additional_special_tokens": [s for s in specials[1:] if s != PAD]})
    if PAD in specials:
        fast.pad_token = PAD
    else:
        fast.pad_token = specials[0]
    return fast


def texts_digest(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(len(text).to_bytes(8, "little"))
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def cached_tokenizer(
    texts: Sequence[str],
    vocab_size: int = 4096,
    specials: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """:func:`train_tokenizer`, saved under ``cache_dir/<hash>`` and loaded from there next time."""
    from transformers import PreTrainedTokenizerFast

    specials = list(specials if specials is not None else toolllama_specials())
    key = hashlib.sha256(
        f"{texts_digest(texts)}|{vocab_size}|{specials!r}|{IDENTIFIER_PATTERN}|v2".encode()
    ).hexdigest()[:16]
    base = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "toolrl" / "toolbench" / "tokenizers"
    path = base / key
    if (path / "tokenizer.json").exists():
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    tok = train_tokenizer(texts, vocab_size, specials)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tok.save_pretrained(str(tmp))
    try:
        tmp.rename(path)
    except OSError:  # another process saved it first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    log.info("trained a %d-token BPE tokenizer on %d texts -> %s", len(tok), len(texts), path)
    return PreTrainedTokenizerFast.from_pretrained(str(path))
