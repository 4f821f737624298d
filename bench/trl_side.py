"""The TRL side of bench/vs_trl.py: TRL 0.11.4's TextEnvironment and PPOTrainer.

Runs inside the TRL virtualenv (trl 0.11.4, transformers 4.46.3), started by
``bench/vs_trl.py``; not meant to be run by hand. It imports nothing from this repository
that needs our transformers: only the calculator tool (``orchestrator.tools.calculator``,
standard library only), so both sides answer with the same tool.

Protocol: one JSON command per line on stdin, one JSON answer per line on stdout, prefixed
with ``@@`` (libraries may print to stdout too). Commands: ``check``, ``rollout``,
``ppo_setup``, ``ppo_step``, ``scripted``, ``quit``. Times are measured here, so the
process start and imports are never counted.

``next_scripted_token`` is shared with vs_trl.py (pure Python): a scripted episode's
next token, the same on both sides.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
from typing import Any

PREFIX = "@@"
RESULT_RE = re.compile(r"Result\s*=\s*(-?\d+(?:\.\d+)?)\s*<submit>")  # the seed's calculator reward
TOLERANCE = 0.01


def next_scripted_token(row: list[int], scripts: list[dict[str, Any]], response_id: int, eos_id: int) -> int:
    """The next token of a scripted episode. ``scripts[i] = {"prompt_ids", "turns"}`` (token ids);
    ``row`` is the episode so far (no padding). Turn k is written after the prompt (k=0) or after
    the k-th ``<response>``; past the script the model writes eos."""
    for script in scripts:
        prompt = script["prompt_ids"]
        if row[: len(prompt)] == prompt:
            break
    else:
        return eos_id
    after = row[len(prompt):]
    turn = after.count(response_id)
    if turn >= len(script["turns"]):
        return eos_id
    last = max((i for i, t in enumerate(after) if t == response_id), default=-1)
    so_far = len(after) - last - 1
    target = script["turns"][turn]
    return target[so_far] if so_far < len(target) else eos_id


def exact_match_rewards(texts: list[str], answers: list[float]) -> list[Any]:
    """The seed's reward function for TRL's TextEnvironment: it gets the last text segment."""
    import torch

    out = []
    for text, answer in zip(texts, answers):
        match = RESULT_RE.search(text)
        ok = match is not None and abs(float(match.group(1)) - float(answer)) < TOLERANCE
        out.append(torch.tensor(1.0 if ok else 0.0))
    return out


class Side:
    def __init__(self, model_dir: str, repo: str, threads: int) -> None:
        import torch

        sys.path.insert(0, repo)
        from orchestrator.tools.calculator import Calculator  # standard library only

        from transformers import AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.model_dir = model_dir
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.calculator = Calculator(name="Calculator", round_digits=2)
        self.trainer = None

    # ------------------------------------------------------------------ building
    def value_model(self) -> Any:
        from trl import AutoModelForCausalLMWithValueHead

        return AutoModelForCausalLMWithValueHead.from_pretrained(self.model_dir)

    def generation_kwargs(self, max_new_tokens: int, forced: Any = None) -> dict[str, Any]:
        tok = self.tokenizer
        kwargs = {"min_length": -1, "top_k": 0, "top_p": 1.0, "temperature": 1.0, "do_sample": True,
                  "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "max_new_tokens": max_new_tokens}
        if forced is not None:
            from transformers import LogitsProcessorList

            kwargs.update(do_sample=False, logits_processor=LogitsProcessorList([forced]))
            kwargs.pop("temperature"), kwargs.pop("top_k"), kwargs.pop("top_p")
        return kwargs

    def environment(self, model: Any, max_new_tokens: int, max_turns: int, max_length: int | None = None,
                    forced: Any = None) -> Any:
        from trl import TextEnvironment

        return TextEnvironment(
            model=model,
            tokenizer=self.tokenizer,
            tools={"Calculator": self.calculator.call},
            reward_fn=exact_match_rewards,
            prompt="",
            max_turns=max_turns,
            max_tool_reponse=400,  # sic: TRL's parameter name
            max_length=max_length,
            generation_kwargs=self.generation_kwargs(max_new_tokens, forced),
        )

    # ------------------------------------------------------------------ commands
    def check(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Tokenize the prompts and score the given ids: vs_trl.py compares them with its own."""
        import transformers
        from transformers import AutoModelForCausalLM

        torch = self.torch
        model = AutoModelForCausalLM.from_pretrained(self.model_dir).eval()
        ids = [self.tokenizer(p)["input_ids"] for p in cmd["prompts"]]
        last_logits = []
        with torch.no_grad():
            for seq in cmd["sequences"]:
                logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
                last_logits.append(logits.tolist())
        special = {t: self.tokenizer.convert_tokens_to_ids(t) for t in cmd["special_tokens"]}
        return {"prompt_ids": ids, "last_logits": last_logits, "special_ids": special,
                "decoded": [self.tokenizer.decode(s) for s in cmd["sequences"]],
                "transformers": transformers.__version__, "architecture": type(model).__name__}

    def rollout(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """TextEnvironment.run over the prompts in batches of ``batch_size``; one timing for all."""
        torch = self.torch
        torch.manual_seed(cmd["seed"])
        model = getattr(self, "_rollout_model", None) or self.value_model()
        self._rollout_model = model
        env = self.environment(model, cmd["max_new_tokens"], cmd["max_turns"])
        prompts, answers, bs = cmd["prompts"], cmd["answers"], cmd["batch_size"]
        episodes = tokens = calls = 0
        rewards = 0.0
        start = time.perf_counter()
        for i in range(0, len(prompts), bs):
            _, _, masks, scores, histories = env.run(prompts[i:i + bs], answers=answers[i:i + bs])
            episodes += len(histories)
            tokens += int(sum(int(m.sum()) for m in masks))
            rewards += float(sum(float(s) for s in scores))
            calls += sum(h.text.count("<response>") for h in histories)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "episodes": episodes, "model_tokens": tokens, "reward_mean": rewards / max(episodes, 1),
                "calls_per_episode": calls / max(episodes, 1)}

    def ppo_setup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """A fresh policy, reference and PPOTrainer with the given batch and minibatch sizes."""
        from trl import PPOConfig, PPOTrainer

        self.torch.manual_seed(cmd["seed"])
        config = PPOConfig(
            batch_size=cmd["batch_size"], mini_batch_size=cmd["minibatch_size"], ppo_epochs=cmd["ppo_epochs"],
            learning_rate=cmd["lr"], init_kl_coef=cmd["init_kl_coef"], adap_kl_ctrl=True, target=cmd["target_kl"],
            horizon=cmd["kl_horizon"], gamma=cmd["gamma"], lam=cmd["lam"], cliprange=cmd["cliprange"],
            cliprange_value=cmd["cliprange_value"], vf_coef=cmd["vf_coef"], max_grad_norm=cmd["max_grad_norm"],
            seed=cmd["seed"], log_with=None,
        )
        model, ref = self.value_model(), self.value_model()
        self.trainer = PPOTrainer(config, model, ref, self.tokenizer)
        self.ppo_env = self.environment(model, cmd["max_new_tokens"], cmd["max_turns"])
        return {"ok": True}

    def ppo_step(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """One training step as the seed ran it: env.run, then trainer.step (rollout + update)."""
        start = time.perf_counter()
        queries, responses, masks, scores, _ = self.ppo_env.run(cmd["prompts"], answers=cmd["answers"])
        mid = time.perf_counter()
        stats = self.trainer.step(queries, responses, scores, masks)
        end = time.perf_counter()
        return {"seconds": end - start, "rollout_s": mid - start, "update_s": end - mid,
                "reward_mean": float(sum(float(s) for s in scores)) / len(scores),
                "kl": float(stats["objective/kl"])}

    def scripted(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Scripted episodes through TextEnvironment (the real model, its logits forced)."""
        torch = self.torch
        tok = self.tokenizer
        scripts, response_id, eos_id = cmd["scripts"], cmd["response_id"], tok.eos_token_id
        pad_id = tok.pad_token_id

        class Forced:  # a LogitsProcessor: only the scripted token is allowed
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                out = torch.full_like(scores, float("-inf"))
                for r, row in enumerate(input_ids.tolist()):
                    first = next((i for i, t in enumerate(row) if t != pad_id), len(row))
                    out[r, next_scripted_token(row[first:], scripts, response_id, eos_id)] = 0.0
                return out

        model = self.value_model()
        env = self.environment(model, cmd["max_new_tokens"], cmd["max_turns"], forced=Forced())
        prompts = [tok.decode(s["prompt_ids"]) for s in scripts]
        queries, responses, masks, rewards, histories = env.run(prompts, answers=cmd["answers"])
        episodes = []
        for q, r, m, reward, h in zip(queries, responses, masks, rewards, histories):
            episodes.append({
                "ids": q.tolist() + r.tolist(),
                "mask": [0] * len(q) + m.tolist(),
                "segments": [{"text": h.text[a:b], "system": s} for (a, b), s in zip(h.text_spans, h.system_spans)],
                "reward_text": h.last_text_segment,
                "reward": float(reward),
                "completed": h.completed,
                "truncated": h.truncated,
            })
        # max_length as TRL documents it: "the maximum number of tokens to allow in an episode"
        limited = self.environment(self.value_model(), cmd["max_new_tokens"], cmd["max_turns"],
                                   max_length=cmd["max_length"], forced=Forced())
        try:
            limited.run(prompts[:1], answers=cmd["answers"][:1])
            max_length_error = None
        except Exception as err:  # noqa: BLE001 - the point is to show what happens
            max_length_error = f"{type(err).__name__}: {err}"
        return {"episodes": episodes, "max_length_error": max_length_error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    side = Side(args.model, args.repo, args.threads)
    print(PREFIX + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            answer = getattr(side, cmd["cmd"])(cmd)
        except Exception as err:  # noqa: BLE001 - reported to the driver, which stops
            answer = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        print(PREFIX + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
