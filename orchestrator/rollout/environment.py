"""The text environment: batched multi-turn rollout with tool calls (protocol.py).

Every active episode generates its turn in one batch (:class:`TurnSampler`); the turn's
calls go to the tool router at once; episodes that ended leave the batch. Markers are
single special tokens and generation stops on their ids; token ids are kept as sampled
and tool output is tokenized once, on its own, with special tokens split so that a
passage containing "<submit>" cannot end an episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from orchestrator.rollout.episode import Episode
from orchestrator.rollout.protocol import CALL, PROTOCOL_TOKENS, RESPONSE, SUBMIT, parse_call
from orchestrator.rollout.sampler import SamplingParams, TurnSampler
from orchestrator.tools.base import ToolCall, ToolResult

# Why an episode stopped (env/end_<reason>_frac). ``max_new_tokens``, ``max_length`` and
# ``max_turns`` are truncations: the episode was cut, not finished.
END_REASONS = ("submitted", "no_call", "max_new_tokens", "max_length", "max_turns")
TRUNCATIONS = ("max_new_tokens", "max_length", "max_turns")


@dataclass
class RolloutTimings:
    generate_s: float = 0.0
    tools_s: float = 0.0
    generated_tokens: int = 0


class TextEnvironment:
    """Runs episodes of a policy against tools; the reward reads the model's text only."""

    def __init__(
        self,
        tokenizer: Any,
        router: Any,
        reward_fn: Callable[[Episode], float],
        config: Any,
        lean_decoder: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.lean_decoder = lean_decoder
        self.router = router
        self.reward_fn = reward_fn
        self.config = config
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in PROTOCOL_TOKENS}
        unknown = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
        if unknown:
            raise ValueError(f"tokenizer lacks protocol tokens {unknown}; build it with orchestrator.models.add_protocol_tokens")
        self.call_id, self.submit_id, self.response_id = ids[CALL], ids[SUBMIT], ids[RESPONSE]
        self.stop_ids = {self.call_id, self.submit_id}
        if tokenizer.eos_token_id is not None:
            self.stop_ids.add(tokenizer.eos_token_id)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.timings = RolloutTimings()

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def encode_tool_output(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def start(self, prompts: Sequence[str], metas: Sequence[dict[str, Any]]) -> list[Episode]:
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        return [Episode.from_prompt(ids, text, meta) for ids, text, meta in zip(encoded, prompts, metas)]

    def rollout(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        metas: Sequence[dict[str, Any]],
        params: SamplingParams = SamplingParams(),
        generator: torch.Generator | None = None,
    ) -> list[Episode]:
        cfg = self.config
        episodes = self.start(prompts, metas)
        active = [ep for ep in episodes if not self._too_long(ep)]
        sampler = TurnSampler(model, self.stop_ids, self.pad_id, params, generator, lean=self.lean_decoder)
        for turn in range(cfg.max_turns):
            if not active:
                break
            sequences = [ep.ids for ep in active]
            budgets = [min(cfg.max_new_tokens, cfg.max_length - len(s)) for s in sequences]
            t0 = time.perf_counter()
            new_tokens = sampler.sample(sequences, budgets, keys=[id(ep) for ep in active])
            self.timings.generate_s += time.perf_counter() - t0
            self.timings.generated_tokens += sum(len(t) for t in new_tokens)

            calling: list[tuple[Episode, ToolCall]] = []
            for ep, tokens, budget in zip(active, new_tokens, budgets):
                ep.add("model", tokens, self.decode(tokens))
                last = tokens[-1] if tokens else None
                if last == self.submit_id:
                    ep.end_reason = "submitted"
                elif last == self.call_id:
                    if turn == cfg.max_turns - 1:
                        ep.end_reason = "max_turns"  # its answer could not be used any more
                        continue
                    ep.num_calls += 1
                    call = parse_call(ep.segments[-1].text) or ToolCall(tool="", query="")
                    calling.append((ep, call))
                elif len(ep) >= cfg.max_length:
                    ep.end_reason = "max_length"
                elif len(tokens) >= budget:
                    ep.end_reason = "max_new_tokens"  # the turn was cut, not ended by the model
                else:
                    ep.end_reason = "no_call"

            if calling:
                t0 = time.perf_counter()
                results = self._call_tools([c for _, c in calling])
                self.timings.tools_s += time.perf_counter() - t0
                for (ep, _), result in zip(calling, results):
                    self._append_tool_output(ep, result)
            active = [ep for ep, _ in calling if not ep.end_reason]
        for ep in episodes:
            ep.reward = float(self.reward_fn(ep))
        return episodes

    def _call_tools(self, calls: list[ToolCall]) -> list[ToolResult]:
        results: list[ToolResult | None] = [None] * len(calls)
        valid = [(i, c) for i, c in enumerate(calls) if c.tool]
        for i, c in enumerate(calls):
            if not c.tool:
                results[i] = ToolResult.failure("bad_request", "malformed call; write <request><ToolName>query<call>")
        if valid:
            answers = self.router.call([c for _, c in valid])
            for (i, _), answer in zip(valid, answers):
                results[i] = answer
        return results  # type: ignore[return-value]

    def _append_tool_output(self, ep: Episode, result: ToolResult) -> None:
        if result.error:
            ep.num_tool_errors += 1
        text = result.text[: self.config.max_tool_response]
        ids = self.encode_tool_output(text) + [self.response_id]
        room = self.config.max_length - len(ep)
        if len(ids) > room:
            ids = ids[:room]
            ep.end_reason = "max_length"
        ep.add("tool", ids, self.decode(ids), error=result.error)
        if not ep.end_reason and len(ep) >= self.config.max_length:
            ep.end_reason = "max_length"

    def _too_long(self, ep: Episode) -> bool:
        if len(ep) >= self.config.max_length:
            ep.end_reason = "max_length"
            return True
        return False


def episode_stats(episodes: Sequence[Episode]) -> dict[str, float]:
    """Sums and counts over ``episodes``: what workers add up before any ratio is taken, so the
    group's metrics are those of the whole batch (a mean of per-worker ratios is not)."""
    stats = {
        "episodes": float(len(episodes)),
        "reward_sum": sum(ep.reward for ep in episodes),
        "reward_sq_sum": sum(ep.reward ** 2 for ep in episodes),
        "calls": float(sum(ep.num_calls for ep in episodes)),
        "tool_errors": float(sum(ep.num_tool_errors for ep in episodes)),
        "used_tool": float(sum(ep.num_calls > 0 for ep in episodes)),
        "model_tokens": float(sum(ep.num_model_tokens for ep in episodes)),
    }
    for reason in END_REASONS:
        stats[f"end_{reason}"] = float(sum(ep.end_reason == reason for ep in episodes))
    return stats


def stats_to_metrics(stats: dict[str, float], prefix: str = "env") -> dict[str, float]:
    """The seed's env/* metrics plus end reasons, calls and tool errors, from summed stats."""
    n = max(stats["episodes"], 1.0)
    mean = stats["reward_sum"] / n
    variance = (stats["reward_sq_sum"] - n * mean**2) / (n - 1) if n > 1 else 0.0
    out = {
        f"{prefix}/reward_mean": mean,
        f"{prefix}/reward_std": max(variance, 0.0) ** 0.5,
        f"{prefix}/truncated_frac": sum(stats[f"end_{r}"] for r in TRUNCATIONS) / n,
        "tools/calls_per_episode": stats["calls"] / n,
        "tools/error_frac": stats["tool_errors"] / max(stats["calls"], 1.0),
        "tools/used_frac": stats["used_tool"] / n,
        "tokens/response_len_mean": stats["model_tokens"] / n,
    }
    for reason in END_REASONS:
        out[f"{prefix}/end_{reason}_frac"] = stats[f"end_{reason}"] / n
    return out


def episode_metrics(episodes: Sequence[Episode], prefix: str = "env") -> dict[str, float]:
    """The metrics of one worker's episodes (``stats_to_metrics(episode_stats(...))``)."""
    return stats_to_metrics(episode_stats(episodes), prefix)
