"""Held-out evaluation with k sampled episodes per problem (trainer.final_eval_samples)."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.models.tokens import build_byte_tokenizer
from orchestrator.config.schema import EnvConfig
from orchestrator.rollout.environment import TextEnvironment
from orchestrator.task import Problem
from orchestrator.tools.calculator import Calculator
from orchestrator.tools.local import LocalRouter
from orchestrator.worker.evaluation import evaluate
from tasks.calculator import exact_match_reward
from tests.scripted import ScriptedLM


def test_k_samples_per_problem_average_like_one_and_keep_every_failure():
    tok = build_byte_tokenizer(extra_tokens=["<Calculator>"])
    problems = [Problem("Q: 2*3?\n", 6, {"kinds": {"op": "*"}}), Problem("Q: 2+3?\n", 5, {"kinds": {"op": "+"}}),
                Problem("Q: 4+4?\n", 8, {"kinds": {"op": "+"}})]
    plans = {"Q: 2*3?\n": ["<request><Calculator>2*3<call>", "\nResult=6<submit>"],
             "Q: 2+3?\n": ["<request><Calculator>2+3<call>", "\nResult=5<submit>"],
             "Q: 4+4?\n": ["\nResult=9<submit>"]}  # a guess, wrong
    task = SimpleNamespace(eval_problems=lambda: problems, prompt=lambda p, few_shot: p.question)
    env = TextEnvironment(tok, LocalRouter([Calculator()]),
                          lambda ep: exact_match_reward(ep.model_text(), ep.meta["answer"], 0.01),
                          EnvConfig(max_turns=2, max_new_tokens=40, max_tool_response=400, max_length=200))
    one = evaluate(env, ScriptedLM(tok, plans), task, False, seed=0, step=0, samples=1)
    four = evaluate(env, ScriptedLM(tok, plans), task, False, seed=0, step=0, samples=4)

    assert len(one.sampled) == 3 and len(four.sampled) == 12
    for result, k in ((one, 1), (four, 4)):
        m = result.metrics
        assert m["eval/samples_per_problem"] == k
        assert abs(m["eval/accuracy"] - 2 / 3) < 1e-9 and abs(m["eval/accuracy_greedy"] - 2 / 3) < 1e-9
        assert m["eval/by_kind/op/*"] == 1.0 and m["eval/by_kind/op/+"] == 0.5
        assert m["eval/by_kind_greedy/op/+"] == 0.5
        # every failing episode, each sample of the failing problem and its greedy one
        assert len(result.failures) == k + 1
        assert {ep.meta["question"] for ep in result.failures} == {"Q: 4+4?\n"}
