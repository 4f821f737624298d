"""DFSDT and ReAct golden trees with a scripted policy, over the real virtual API server.

Each test scripts the model's replies call by call and checks the whole tree ToolBench's
search would grow (node types, descriptions, status codes, pruning), the contexts the model
was shown, and the answer file's outcome.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.toolbench.inference.batch import local_backend
from tasks.toolbench.inference.dfsdt import DFSDT
from tasks.toolbench.inference.driver import run_searches
from tasks.toolbench.inference.policy import ScriptedPolicy
from tasks.toolbench.inference.prompts import DIVERSITY_PROMPT
from tasks.toolbench.inference.queries import env_from_query, load_queries
from tasks.toolbench.inference.react import ReAct
from tasks.toolbench.inference.search import SearchConfig, SearchState
from tasks.toolbench.server import ServerConfig, VirtualAPIServer

FIXTURE = Path(__file__).parent / "fixtures" / "toolbench_inference" / "queries.json"
ANSWER = '{"return_type": "give_answer", "final_answer": "Oslo is cold."}'
GIVE_UP = '{"return_type": "give_up_and_restart"}'
WEATHER, FORECAST = "current_weather_for_sky_cast", "forecast_for_sky_cast"


def step(thought: str, action: str, action_input: str) -> str:
    """A model step in ToolBench's text, as the toolllama template's model writes it."""
    return f"\nThought: {thought}\nAction: {action}\nAction Input: {action_input}</s>"


@pytest.fixture(scope="module")
def server() -> VirtualAPIServer:
    return VirtualAPIServer(ServerConfig(query_files=[str(FIXTURE)]))


@pytest.fixture(scope="module")
def weather_env():
    return env_from_query(load_queries(FIXTURE)[0])


def search(server, env, replies: list[str], method: str = "dfsdt", seed: int = 0, **config):
    policy = ScriptedPolicy({env.query_id: replies})
    state = SearchState(env=env, config=SearchConfig(method=method, **config), parse=policy.parse)
    run = DFSDT(state, seed=seed) if method == "dfsdt" else ReAct(state, seed=seed)
    outcomes, _ = run_searches([(env.query_id, run.run())], policy, local_backend(server))
    assert outcomes[env.query_id].error is None
    return run, policy


def shape(node: dict, depth: int = 0) -> list[str]:
    """The tree as indented lines: type, description (newlines as \\n), [code], 'pruned'."""
    lines = []
    if node["depth"] > 0:
        description = node["description"].replace("\n", "\\n")
        line = "  " * (depth - 1) + f"{node['node_type']}: {description}"
        if "observation_code" in node:
            line += f" [{node['observation_code']}]"
        lines.append(line + (" pruned" if node["pruned"] else ""))
    for child in node["children"]:
        lines += shape(child, depth + 1)
    return lines


def golden(text: str) -> list[str]:
    return [line for line in text.strip("\n").splitlines()]


def test_immediate_answer(server, weather_env):
    run, policy = search(server, weather_env, [step("I know it.", "Finish", ANSWER)])
    out = run.to_json()
    assert shape(out["tree"]["tree"]) == golden(f"""
Thought: I know it.
  Action: Finish
    Action Input: {ANSWER} [3]
""")
    gen = out["answer_generation"]
    assert out["win"] and gen["valid_data"] and gen["finish_type"] == "give_answer"
    assert gen["final_answer"] == ANSWER and gen["query_count"] == 1
    assert [m["role"] for m in gen["train_messages"][0]] == ["system", "user", "assistant"]
    assert run.state.api_calls == 0 and len(out["compare_candidates"]) == 1
    assert out["forward_args"] == {"single_chain_max_step": 12, "tree_beam_size": 2, "max_query_count": 200,
                                   "answer": 1, "with_filter": False}


def test_give_up_then_answer_in_a_sibling(server, weather_env):
    replies = [
        step("Check the weather.", WEATHER, '{"city": "Oslo"}'),
        step("This is not enough.", "Finish", GIVE_UP),
        step("Try the forecast.", FORECAST, '{"city": "Oslo"}'),
        step("Done.", "Finish", ANSWER),
    ]
    run, policy = search(server, weather_env, replies)
    out = run.to_json()
    weather_obs = policy.seen[1].messages[-1]["content"]
    assert shape(out["tree"]["tree"]) == golden(f"""
Thought: Check the weather.
  Action: {WEATHER}
    Action Input: {{"city": "Oslo"}} [0]
      Thought: This is not enough.
        Action: Finish
          Action Input: {GIVE_UP} [4] pruned
Thought: Try the forecast.
  Action: {FORECAST}
    Action Input: {{"city": "Oslo"}} [0]
      Thought: Done.
        Action: Finish
          Action Input: {ANSWER} [3]
""")
    # The third call (the root's second child) was shown what the first child tried ...
    diversity = policy.seen[2].messages[-1]
    candidates = [{"name": WEATHER, "arguments": '{"city": "Oslo"}', "function_output": weather_obs,
                   "mento-carlo-action-value": 0.0}]
    assert diversity == {"role": "user", "content": DIVERSITY_PROMPT.replace(
        "{previous_candidate}", json.dumps(candidates, indent=2) + "\n")}
    # ... and the step below it was not: the diversity prompt lives in one call's context only.
    assert all(m["role"] != "user" or "previous actions" not in m["content"] for m in policy.seen[3].messages)
    assert [m["role"] for m in policy.seen[3].messages] == ["system", "user", "assistant", "function"]
    gen = out["answer_generation"]
    assert gen["finish_type"] == "give_answer" and gen["query_count"] == 4
    # The answer's path trains on the context each step saw, diversity prompt included.
    assert [len(c) for c in gen["train_messages"]] == [4, 5]
    assert gen["train_messages"][0][2] == diversity


def test_depth_prunes_and_the_parent_tries_its_next_child(server, weather_env):
    replies = [
        step("Weather first.", WEATHER, '{"city": "Oslo"}'),
        step("Forecast too.", FORECAST, '{"city": "Oslo"}'),  # depth 6 = max_depth: pruned
        step("Longer forecast.", FORECAST, '{"city": "Oslo", "days": 5}'),  # its sibling, also too deep
        step("Answer now.", "Finish", ANSWER),  # the root's second child
    ]
    run, policy = search(server, weather_env, replies, max_depth=6)
    assert shape(run.to_json()["tree"]["tree"]) == golden(f"""
Thought: Weather first.
  Action: {WEATHER}
    Action Input: {{"city": "Oslo"}} [0]
      Thought: Forecast too.
        Action: {FORECAST}
          Action Input: {{"city": "Oslo"}} [0] pruned
      Thought: Longer forecast.
        Action: {FORECAST}
          Action Input: {{"city": "Oslo", "days": 5}} [0] pruned
Thought: Answer now.
  Action: Finish
    Action Input: {ANSWER} [3]
""")
    # Depth counted in steps gives the same search.
    again, _ = search(server, weather_env, replies, max_depth=2, depth_unit="steps")
    assert shape(again.to_json()["tree"]["tree"]) == shape(run.to_json()["tree"]["tree"])


def test_a_parse_error_is_pruned_and_never_becomes_an_action(server, weather_env):
    replies = [
        "I think the weather in Oslo is nice.",  # no tags at all
        "\nThought: Call it.\nAction: " + WEATHER + "\n</s>",  # no Action Input: ToolBench's find() makes garbage here
        step("Answer.", "Finish", ANSWER),
    ]
    run, policy = search(server, weather_env, replies, width=3)
    lines = shape(run.to_json()["tree"]["tree"])
    second = replies[1].replace("\n", "\\n")
    assert lines == golden(f"""
Thought: I think the weather in Oslo is nice. [-1] pruned
Thought: {second} [-1] pruned
Thought: Answer.
  Action: Finish
    Action Input: {ANSWER} [3]
""")
    assert run.state.parse_errors == 2 and run.state.api_calls == 0
    # A pruned parse error has no action to show: the next call gets the same context.
    assert policy.seen[1].messages == policy.seen[0].messages == policy.seen[2].messages
    bad = run.root.children[1]
    assert "missing_action_input" in bad.observation


def test_the_budget_ends_the_search_and_the_call_reaching_it_is_not_made(server, weather_env):
    replies = [step("Weather.", WEATHER, '{"city": "Oslo"}'), step("Forecast.", FORECAST, '{"city": "Oslo"}')]
    # Two replies only: a third LLM call would make the scripted policy raise.
    run, _ = search(server, weather_env, replies, max_query_count=3)
    out = run.to_json()
    assert run.state.budget_exhausted and run.state.llm_calls == 2
    assert out["answer_generation"]["query_count"] == 3  # counted as ToolBench counts it
    assert not out["win"] and not out["answer_generation"]["valid_data"]
    assert len(shape(out["tree"]["tree"])) == 6


def test_hallucinated_function_is_code_1_renamed_and_not_pruned(server, weather_env):
    replies = [step("News?", "get_news", "{}"), step("Answer.", "Finish", ANSWER)]
    run, policy = search(server, weather_env, replies)
    assert shape(run.to_json()["tree"]["tree"])[2] == "    Action Input: {} [1]"
    # The search went on below the failed call, which the model now sees renamed.
    assistant = policy.seen[1].messages[2]
    assert assistant["function_call"]["name"] == "invalid_hallucination_function_name"
    assert policy.seen[1].messages[3]["content"] == '{"error": "No such function name: get_news", "response": ""}'
    assert run.to_json()["win"]


def test_react_restarts_until_a_chain_answers(server, weather_env):
    replies = [
        step("Weather.", WEATHER, '{"city": "Oslo"}'), step("Give up.", "Finish", GIVE_UP),  # try 1: gives up
        "no idea",  # try 2: a parse error ends the chain
        step("Weather again.", WEATHER, '{"city": "Oslo"}'), step("Answer.", "Finish", ANSWER),  # try 3
    ]
    run, policy = search(server, weather_env, replies, method="react", pass_at=3)
    out = run.to_json()
    assert out["try_count"] == 3 and [t["win"] for t in out["trys"]] == [False, False, True]
    assert [n["node_type"] for n in out["trys"][1]["chain"]] == ["Thought"]
    # Every try starts afresh from the query.
    roots = [policy.seen[i].messages for i in (0, 2, 3)]
    assert roots[0] == roots[1] == roots[2] and len(roots[0]) == 2
    assert out["win"] and out["answer_generation"]["final_answer"] == ANSWER
    assert out["forward_args"] == {"single_chain_max_step": 12, "pass_at": 3, "answer": 1}
    # CoT@2 with two failed chains stops there, without an answer.
    failed, _ = search(server, weather_env, replies[:3], method="react", pass_at=2)
    assert failed.to_json()["try_count"] == 2 and not failed.to_json()["answer_generation"]["valid_data"]


def test_the_final_give_up_pick_is_seeded(server, weather_env):
    replies = [step(f"Try {i}.", WEATHER, json.dumps({"city": city})) for i, city in enumerate(["Oslo", "Rome"])]
    script = [replies[0], step("No.", "Finish", GIVE_UP), replies[1], step("No again.", "Finish", GIVE_UP)]
    picks = {}
    for seed in range(8):
        run, _ = search(server, weather_env, script, seed=seed)
        gen = run.to_json()["answer_generation"]
        assert gen["finish_type"] == "give_up" and gen["valid_data"]
        picks[seed] = gen["train_messages"][0][-1]["content"]
        again, _ = search(server, weather_env, script, seed=seed)
        assert again.to_json()["answer_generation"]["train_messages"][0][-1]["content"] == picks[seed]
    assert set(picks.values()) == {"Try 0.", "Try 1."}  # both candidates get picked across seeds


def test_searches_of_many_queries_share_llm_batches(server):
    queries = load_queries(FIXTURE)
    envs = [env_from_query(q) for q in queries]
    policy = ScriptedPolicy({e.query_id: [step("Done.", "Finish", ANSWER)] for e in envs})
    runs = [DFSDT(SearchState(env=e, config=SearchConfig(), parse=policy.parse)) for e in envs]
    _, stats = run_searches([(e.query_id, r.run()) for e, r in zip(envs, runs)], policy, local_backend(server))
    assert stats.llm_batch_sizes == [3]
    assert all(r.to_json()["win"] for r in runs)


def test_answer_files_have_toolbench_fields_in_toolbench_order(server, weather_env):
    from tasks.toolbench.paths import toolbench_sample_dir

    def node_keys(node, out):
        out.setdefault(node["node_type"], set()).add(tuple(k for k in node if k != "matching_time"))
        for child in node["children"]:
            node_keys(child, out)
        return out

    sample = json.loads((toolbench_sample_dir() / "answer" / "G1_answer" / "57_ChatGPT_DFS_woFilter_w2.json").read_text())
    replies = [step("Weather.", WEATHER, '{"city": "Oslo"}'), step("Done.", "Finish", ANSWER)]
    ours = search(server, weather_env, replies)[0].to_json()
    assert list(ours) == list(sample)
    expected = node_keys(sample["tree"]["tree"], {})
    for node_type, keys in node_keys(ours["tree"]["tree"], {}).items():
        assert keys <= expected[node_type], node_type
    assert set(ours["answer_generation"]) == set(sample["answer_generation"])
