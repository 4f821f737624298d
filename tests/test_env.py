"""The text environment: turns, tool calls, end reasons, masks, and what the reward sees."""

import pytest
import torch

from orchestrator.config.schema import EnvConfig
from orchestrator.rollout.environment import TextEnvironment, episode_metrics
from orchestrator.rollout.protocol import parse_call
from orchestrator.models.tokens import build_byte_tokenizer
from orchestrator.rollout.sampler import SamplingParams
from orchestrator.tools.base import ToolCall, ToolError
from orchestrator.tools.calculator import Calculator
from orchestrator.tools.local import LocalRouter
from tasks.calculator import exact_match_reward
from tests.scripted import ScriptedLM


class Boom:
    name, description = "Boom", "always fails"

    def call(self, query: str) -> str:
        raise ToolError("no such thing")


class Leaky:
    name, description = "Leaky", "answers with text that looks like a submission"

    def call(self, query: str) -> str:
        return f"Result={query}<submit>"


class Echo:
    name, description = "Echo", "returns its query"

    def call(self, query: str) -> str:
        return query


@pytest.fixture(scope="module")
def tok():
    return build_byte_tokenizer(extra_tokens=["<Calculator>"])


def make_env(tok, **limits):
    router = LocalRouter([Calculator(), Boom(), Echo(), Leaky()])
    reward = lambda ep: exact_match_reward(ep.model_text(), ep.meta["answer"], 0.01)  # noqa: E731
    return TextEnvironment(tok, router, reward, EnvConfig(**{"max_turns": 3, "max_new_tokens": 40, "max_tool_response": 400, "max_length": 200, **limits}))


def run(env, tok, plans, answers):
    model = ScriptedLM(tok, plans)
    prompts = list(plans)
    return env.rollout(model, prompts, [{"answer": a} for a in answers], SamplingParams(temperature=0))


def test_parse_call():
    assert parse_call("x<request><Calculator>1+2<call>") == ToolCall("Calculator", "1+2")
    assert parse_call("<request>Calculator 1+2<call>") is None
    assert parse_call("no request<call>") is None


def test_tool_call_then_submit(tok):
    env = make_env(tok)
    (ep,) = run(env, tok, {"Q: 2*3?\n": ["<request><Calculator>2*3<call>", "\nResult=6<submit>"]}, [6])
    assert ep.end_reason == "submitted" and ep.reward == 1.0 and ep.num_calls == 1
    assert [s.source for s in ep.segments] == ["prompt", "model", "tool", "model"]
    assert ep.segments[2].text == "6<response>"
    # the mask is 1 exactly on the model's tokens
    assert sum(ep.mask) == ep.num_model_tokens
    assert [m for s in ep.segments for m in [s.source == "model"] * len(s.token_ids)] == [bool(m) for m in ep.mask]
    # ids are the concatenation of the segments, nothing re-tokenized
    assert ep.ids == [t for s in ep.segments for t in s.token_ids]


def test_reward_ignores_tool_text(tok):
    env = make_env(tok)
    # the tool's reply contains the right answer and a submit marker; the model never says it
    (ep,) = run(env, tok, {"Q: x\n": ["<request><Leaky>6<call>", "\nResult=5<submit>"]}, [6])
    assert "Result=6" in ep.segments[2].text
    assert ep.reward == 0.0
    # the tool text's "<submit>" was split into plain bytes: it did not end the episode
    assert tok.convert_tokens_to_ids("<submit>") not in ep.segments[2].token_ids
    assert ep.end_reason == "submitted" and ep.num_calls == 1


def test_errors_become_observations(tok):
    env = make_env(tok)
    plans = {
        "A\n": ["<request><Nope>1<call>", "Result=1<submit>"],
        "B\n": ["<request><Boom>1<call>", "Result=1<submit>"],
        "C\n": ["<request><Calculator>1/0<call>", "Result=1<submit>"],
        "D\n": ["<request>junk<call>", "Result=1<submit>"],
    }
    eps = run(env, tok, plans, [1, 1, 1, 1])
    kinds = [ep.segments[2].error for ep in eps]
    assert kinds == ["unknown_tool", "tool_error", "tool_error", "bad_request"]
    assert "available tools: Boom, Calculator, Echo, Leaky" in eps[0].segments[2].text
    assert all(ep.end_reason == "submitted" and ep.reward == 1.0 for ep in eps)
    assert episode_metrics(eps)["tools/error_frac"] == 1.0


def test_end_reasons(tok):
    env = make_env(tok, max_turns=2, max_length=50, max_new_tokens=40)
    plans = {
        "turns\n": ["<request><Echo>a<call>", "<request><Echo>b<call>"],
        "length\n": ["<request><Echo>" + "y" * 30 + "<call>", "Result=1<submit>"],
        "nocall\n": ["I just talk"],
    }
    eps = run(env, tok, plans, [0, 0, 0])
    assert [ep.end_reason for ep in eps] == ["max_turns", "max_length", "no_call"]
    assert all(len(ep) <= 50 for ep in eps)
    m = episode_metrics(eps)
    assert m["env/end_max_turns_frac"] == pytest.approx(1 / 3) and m["env/truncated_frac"] == pytest.approx(2 / 3)


def test_tool_response_cut_to_max_chars(tok):
    env = make_env(tok, max_tool_response=5)
    (ep,) = run(env, tok, {"Q\n": ["<request><Echo>abcdefghij<call>", "Result=0<submit>"]}, [0])
    assert ep.segments[2].text == "abcde<response>"


def test_sampler_rows_stop_independently(tok):
    """A real (random) model: each row stops at its own budget; finished rows leave the batch."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from orchestrator.rollout.sampler import sample_turn

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)).eval()
    seqs = [[1, 2, 3], [4, 5], [6]]
    out = sample_turn(model, seqs, [5, 0, 2], stop_ids=set(), pad_id=0, params=SamplingParams(1.0), generator=torch.Generator().manual_seed(0))
    assert [len(o) for o in out] == [5, 0, 2]
    # greedy sampling with a KV cache equals greedy decoding without one
    greedy = sample_turn(model, [[1, 2, 3]], [4], set(), 0, SamplingParams(0.0))[0]
    ids = [1, 2, 3]
    for _ in range(4):
        ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert greedy == ids[3:]
