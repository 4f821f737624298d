"""Batched sampling with a KV cache that stops each row on token ids.

One call generates one turn for every active episode: rows are left-padded, positions
come from the attention mask (the training forward uses the same positions), each row
stops on its own at a stop id or its own token budget, and finished rows are dropped
from the cache so the batch only pays for rows still writing. With the lean decoder
(Llama family, GPT-2), an episode's keys and values are also kept from one turn to the next, so
a turn encodes only the stop token and the tool output appended since the last one.

Why not ``model.generate``: we need per-row budgets (``max_length`` differs by row after
tool output), stop on ids, and the sampled ids exactly as drawn; generate's per-step
machinery also costs more than the forward pass of a small model on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from orchestrator.rollout.lean_decoder import LeanDecoder, RowCache, lean_decoder_for


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings for one turn. ``temperature=0`` is greedy."""

    temperature: float = 1.0
    top_k: int = 0


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: the first real token of every row is 0."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _draw(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    if params.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / params.temperature
    if params.top_k > 0:
        kth = torch.topk(logits, params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    # Inverse CDF: one uniform per row (torch.multinomial costs ~10x more on a CPU, where it
    # was a tenth of a small model's rollout). right=True never picks a zero-probability token.
    # The uniforms come from the generator's own device (a CPU generator cannot fill a CUDA tensor)
    # and move to the logits': a seed draws the same tokens on a CPU and on a GPU.
    cdf = torch.softmax(logits, dim=-1).cumsum(-1)
    where = generator.device if generator is not None else cdf.device
    u = torch.rand((cdf.shape[0], 1), generator=generator, device=where, dtype=cdf.dtype).to(cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


class _TransformersStepper:
    """Any causal LM through its own forward and cache; finished rows leave the cache at once.
    Each turn encodes the whole episode again."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def start(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, capacity: int,
              prefixes: list[RowCache | None]) -> torch.Tensor:
        self.attention = attention
        result = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        self.cache = result.past_key_values
        return result.logits[:, -1, :]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.attention = torch.cat([self.attention, self.attention.new_ones((self.attention.shape[0], 1))], dim=1)
        result = self.model(input_ids=tokens[:, None], attention_mask=self.attention, position_ids=positions[:, None],
                            past_key_values=self.cache, use_cache=True)
        self.cache = result.past_key_values
        return result.logits[:, -1, :]

    def worth_compacting(self, finished: int, rows: int) -> bool:
        return finished > 0

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.attention = self.attention[rows]


class _LeanStepper:
    """The lean forward (orchestrator/lean_decoder.py). Finished rows are dropped once they are a quarter of the
    batch (a drop copies the cache; a finished row costs little to carry), and every finished
    row's keys and values are saved for its episode's next turn."""

    remembers = True

    def __init__(self, decoder: LeanDecoder) -> None:
        self.decoder = decoder

    def start(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, capacity: int,
              prefixes: list[RowCache | None]) -> torch.Tensor:
        return self.decoder.start(input_ids, attention, positions, capacity, prefixes)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.decoder.step(tokens, positions)

    def worth_compacting(self, finished: int, rows: int) -> bool:
        return finished * 4 >= rows

    def keep(self, rows: torch.Tensor) -> None:
        self.decoder.keep(rows)


class TurnSampler:
    """Samples the turns of one rollout. ``keys`` name the episodes across turns: with the lean
    decoder an episode's next turn continues from its saved keys and values instead of
    encoding its history again; with the transformers forward every turn starts afresh."""

    def __init__(self, model: torch.nn.Module, stop_ids: set[int], pad_id: int, params: SamplingParams,
                 generator: torch.Generator | None = None, lean: bool = True) -> None:
        self.model = model
        self.stop = torch.tensor(sorted(stop_ids), dtype=torch.long)
        self.pad_id = pad_id
        self.params = params
        self.generator = generator
        self.decoder = lean_decoder_for(model) if lean else None
        self.saved: dict[object, RowCache] = {}

    @torch.no_grad()
    def sample(self, sequences: list[list[int]], budgets: list[int], keys: list[object] | None = None) -> list[list[int]]:
        """Continue each sequence by at most ``budgets[i]`` tokens; a stop id is kept and ends the row.

        Returns the new tokens per row (empty for a row whose budget is 0). ``sequences[i]``
        must extend what was sampled for ``keys[i]`` in an earlier turn (the environment
        only appends). Draws are the same with either forward: one per unfinished row.
        """
        device = next(self.model.parameters()).device
        out: list[list[int]] = [[] for _ in sequences]
        keys = keys if keys is not None else [None] * len(sequences)
        rows = [i for i, b in enumerate(budgets) if b > 0]
        saved, self.saved = self.saved, {}  # an episode not continued now never will be
        if not rows:
            return out
        stepper = _LeanStepper(self.decoder) if self.decoder is not None else _TransformersStepper(self.model)
        prefixes = [saved.get(keys[i]) if keys[i] is not None and self.decoder is not None else None for i in rows]
        prefixes = [p if p is not None and p.tokens < len(sequences[i]) else None for p, i in zip(prefixes, rows)]
        if self.decoder is not None and len(rows) > 1 and all(p is None for p in prefixes):
            prefixes = self._shared_prefix([sequences[i] for i in rows], device)
        done = [p.tokens if p is not None else 0 for p in prefixes]  # tokens already encoded, per row
        pending = [sequences[i][n:] for i, n in zip(rows, done)]
        width = max(len(p) for p in pending)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (chunk, n) in enumerate(zip(pending, done)):
            input_ids[r, width - len(chunk):] = torch.tensor(chunk, dtype=torch.long)
            attention[r, width - len(chunk):] = 1
            positions[r, width - len(chunk):] = torch.arange(n, n + len(chunk))
        input_ids, attention, positions = input_ids.to(device), attention.to(device), positions.to(device)

        logits = stepper.start(input_ids, attention, positions, width + max(budgets[i] for i in rows), prefixes)
        next_pos = positions[:, -1] + 1  # (B,)
        origin = torch.tensor(rows, dtype=torch.long)  # tensor row -> original index
        remaining = torch.tensor([budgets[i] for i in rows], dtype=torch.long)
        writing = torch.ones(len(rows), dtype=torch.bool)
        remember = getattr(stepper, "remembers", False)
        ends: dict[int, int] = {}  # original index -> the stepper's columns when the row finished

        def save(batch_rows: list[int]) -> None:
            for r in batch_rows:
                i = int(origin[r])
                if keys[i] is not None:
                    tokens = len(sequences[i]) + len(out[i]) - 1  # the last draw is not encoded yet
                    self.saved[keys[i]] = self.decoder.save(r, ends[i], tokens)

        while True:
            if bool(writing.all()):
                tokens = _draw(logits, self.params, self.generator)  # (B,)
            else:  # draw for unfinished rows only, so the random stream does not depend on the stepper
                tokens = torch.full((len(origin),), self.pad_id, dtype=torch.long, device=device)
                tokens[writing.to(device)] = _draw(logits[writing.to(device)], self.params, self.generator)
            drawn = tokens.cpu()
            for r, (i, live) in enumerate(zip(origin.tolist(), writing.tolist())):
                if live:  # a finished row still carried by the stepper draws nothing
                    out[i].append(int(drawn[r]))
            remaining -= 1
            newly = writing & (torch.isin(drawn, self.stop) | (remaining <= 0))
            if remember:
                for r in newly.nonzero().flatten().tolist():
                    ends[int(origin[r])] = stepper.decoder.length
            writing &= ~newly
            if not bool(writing.any()):
                if remember:
                    save(list(range(len(origin))))
                break
            finished = int((~writing).sum())
            if finished and stepper.worth_compacting(finished, len(origin)):
                if remember:
                    save((~writing).nonzero().flatten().tolist())
                keep = writing.nonzero().squeeze(-1)
                stepper.keep(keep.to(device))
                origin, remaining, writing = origin[keep], remaining[keep], writing[keep]
                tokens, next_pos = tokens[keep.to(device)], next_pos[keep.to(device)]
            # A finished row the stepper still carries is fed at its last position, not past it: past
            # n_positions a learned position table (GPT-2) has no row (IndexError on a CPU, a
            # device-side assert on a GPU). Its logits are never read.
            live = writing.to(device)
            logits = stepper.step(tokens, torch.where(live, next_pos, (next_pos - 1).clamp(min=0)))
            next_pos = next_pos + live.long()
        return out

    def _shared_prefix(self, sequences: list[list[int]], device: torch.device) -> list[RowCache | None]:
        """Encode the prompts' common beginning once (an instruction, few-shot examples, "What
        is ") and start every row from it; all rows keep at least one token of their own."""
        shortest = min(len(seq) for seq in sequences)
        common = 0
        while common < shortest - 1 and all(seq[common] == sequences[0][common] for seq in sequences):
            common += 1
        if common < 2:
            return [None] * len(sequences)
        ids = torch.tensor([sequences[0][:common]], dtype=torch.long, device=device)
        self.decoder.start(ids, torch.ones_like(ids), torch.arange(common, device=device)[None], common)
        return [self.decoder.save(0, common, common)] * len(sequences)


def sample_turn(
    model: torch.nn.Module,
    sequences: list[list[int]],
    budgets: list[int],
    stop_ids: set[int],
    pad_id: int,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    lean: bool = True,
) -> list[list[int]]:
    """One turn for sequences with no earlier turn to continue (see :class:`TurnSampler`)."""
    return TurnSampler(model, stop_ids, pad_id, params, generator, lean).sample(sequences, budgets)
