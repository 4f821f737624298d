"""ToolEval's arithmetic through a real HTTP judge: a fake OpenAI-compatible server on
127.0.0.1 answers each function call from markers in the prompt (``[first:Unsure]``...) and
always prefers the answer shown first, so the pass rate, SoPR, the coin flips, the ties and
the win rate's order swap can be checked against hand counts; then a second run with the
same cache file must send no request at all."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.toolbench.tooleval.draws import coin
from tasks.toolbench.tooleval.evaluate import evaluate_pass, evaluate_win
from tasks.toolbench.tooleval.judges import OpenAIJudge, OpenAIJudgeConfig, canonical_json, request_key
from tasks.toolbench.tooleval.prompts import load_prompts

from test_tooleval import make_answer


class FakeJudgeServer:
    """``/v1/chat/completions`` that reads the verdict it should give from the prompt:
    ``[first:X]`` for check_answer_status, ``[second:X]`` for parse_answer_status,
    ``[task:X]`` for check_task_solvable (``X=flip``: Solved on even seeds, Unsolved on odd);
    select_better_answer always returns index 0."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                payload = json.dumps(server.reply(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, body: dict) -> dict:
        if "tool_choice" in body:
            function = body["tool_choice"]["function"]["name"]
        else:
            function = body["function_call"]["name"]
        content = body["messages"][0]["content"]
        seed = body.get("seed", 0)

        def marker(tag: str) -> str:
            found = re.search(r"\[" + tag + r":(\w+)\]", content)
            value = found.group(1) if found else "Solved"
            return ("Solved" if seed % 2 == 0 else "Unsolved") if value == "flip" else value

        if function == "check_answer_status":
            arguments = {"answer_status": marker("first"), "reason": "first look"}
        elif function == "parse_answer_status":
            arguments = {"answer_status": marker("second"), "reason": "second look"}
        elif function == "check_task_solvable":
            arguments = {"task_status": marker("task") if "[task:" in content else "Solvable", "reason": "task"}
        else:
            arguments = {"index": 0, "reason": "the first one"}
        call = {"name": function, "arguments": json.dumps(arguments)}
        message = ({"role": "assistant", "content": None,
                    "tool_calls": [{"id": "call_0", "type": "function", "function": call}]}
                   if "tools" in body else {"role": "assistant", "content": None, "function_call": call})
        return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}],
                "usage": {"prompt_tokens": len(content) // 4, "completion_tokens": 12}}

    def __enter__(self) -> "FakeJudgeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    with FakeJudgeServer() as s:
        yield s


def judge(server: FakeJudgeServer, cache, **options) -> OpenAIJudge:
    return OpenAIJudge(OpenAIJudgeConfig(base_url=server.url, model="fake-judge", cache_path=str(cache), **options))


def sopr_answers():
    return [make_answer("1", "done [first:Solved]"),
            make_answer("2", "hmm [first:Unsure][second:Unsure]"),
            make_answer("3", "no finish", finished=False),
            make_answer("4", "sometimes [first:flip]")]


def test_sopr_through_http_then_from_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "cache.jsonl"
    first = judge(server, cache)
    report = evaluate_pass(sopr_answers(), first, metric="sopr", runs=3, max_workers=4)
    # run 0: 1 + 0.5 + 0 + 1 (seed 0 even); run 1: 1 + 0.5 + 0 + 0; run 2 like run 0
    row = report.rows[0]
    assert row.per_run == pytest.approx([0.625, 0.375, 0.625])
    assert row.value == pytest.approx(0.541666, abs=1e-5) and row.run_std == pytest.approx(0.117851, abs=1e-5)
    # requests: 1 per run for answers 1 and 4, 2 for answer 2 (Unsure -> second look), none for 3
    assert first.cost.requests == len(server.bodies) == 12 and first.cost.cache_hits == 0
    assert first.cost.completion_tokens == 12 * 12 and first.cost.prompt_tokens > 0
    assert report.metrics()["toolbench/judge/requests"] == 12
    assert len(cache.read_text().splitlines()) == 12

    second = judge(server, cache)
    again = evaluate_pass(sopr_answers(), second, metric="sopr", runs=3, max_workers=4)
    assert len(server.bodies) == 12 and second.cost.requests == 0 and second.cost.cache_hits == 12
    assert second.cost.cached_completion_tokens == 12 * 12
    assert [r.per_run for r in again.rows] == [r.per_run for r in report.rows] and again.labels == report.labels


def test_requests_are_toolevals_and_the_seed_is_the_run(server, tmp_path):
    j = judge(server, tmp_path / "c.jsonl")
    evaluate_pass([make_answer("7", "x [first:Unsure][second:Solved]", query="Find the thing")], j,
                  metric="sopr", runs=2)
    bodies = server.bodies
    assert [b["tool_choice"]["function"]["name"] for b in bodies] == ["check_answer_status", "parse_answer_status"] * 2
    assert [b["seed"] for b in bodies] == [0, 0, 1, 1]
    prompts = load_prompts()
    answer = make_answer("7", "x [first:Unsure][second:Solved]", query="Find the thing")
    assert bodies[0]["messages"] == [{"role": "user", "content": prompts.functions["check_answer_status"].template.format(
        query="Find the thing", answer=answer.final_answer)}]
    assert bodies[1]["messages"][0]["content"] == prompts.functions["parse_answer_status"].template.format(
        query="Find the thing", answer=json.dumps(answer.answer))
    schema = bodies[0]["tools"][0]["function"]
    assert schema["parameters"]["required"] == ["answer_status", "reason"]
    assert bodies[0]["model"] == "fake-judge" and bodies[0]["temperature"] == 0.2 and bodies[0]["max_tokens"] == 1000
    # the cache key does not depend on key order
    assert request_key(bodies[0]) == request_key(json.loads(canonical_json(dict(reversed(list(bodies[0].items()))))))


def test_pass_rate_and_win_rate_through_http(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "cache.jsonl"
    seed = 5
    ref = [make_answer("1", "a [first:Solved]", model="ref"),
           make_answer("2", "b [first:Unsolved]", query="q? [task:Unsolvable]", model="ref"),
           make_answer("3", "c [first:Unsure][second:Unsure]", query="q? [task:Unsure]", model="ref"),
           make_answer("4", "d [first:flip]", model="ref")]
    cand = [make_answer("1", "a2 [first:Solved]", model="cand"),
            make_answer("2", "b2 [first:Unsolved]", model="cand"),
            make_answer("3", "c [first:Unsure][second:Unsure]", query="q? [task:Unsure]", model="cand"),
            make_answer("4", "d2 [first:Unsolved]", model="cand")]

    def run_all(j):
        sides = [evaluate_pass(a, j, metric="pass_rate", runs=4, seed=seed, max_workers=4) for a in (ref, cand)]
        win = evaluate_win(ref, cand, j, reference_report=sides[0], candidate_report=sides[1], rounds=2,
                           seed=seed, max_workers=4)
        return sides, win

    first = judge(server, cache, seed=0)
    sides, win = run_all(first)
    requests = len(server.bodies)

    ref_row = sides[0].rows[0]
    flips = [coin(seed, "unsure", "G1", "ref", "3", r) for r in range(4)]
    # ref: 1 Solved (4 passes); 2 Unsolved + Unsolvable -> Passed; 3 Unsure + Unsure -> coin x4;
    # 4 Solved on even runs, Unsolved (+ Solvable) on odd -> 2-2, a tie that counts as a pass
    assert ref_row.counts["pass_unsure_coin_flips"] == 4 and ref_row.counts["pass_unsure_flips_passed"] == sum(flips)
    assert ref_row.value == pytest.approx((3 + (sum(flips) >= 2)) / 4)
    assert ref_row.per_run == pytest.approx([(2 + flips[r] + (r % 2 == 0)) / 4 for r in range(4)])
    assert ref_row.counts["ties"] == 1 + (sum(flips) == 2)

    # win rate: query 1 both pass, both Solved -> the judge (index 0) in both orders -> tie;
    # 2: the reference passes (Unsolvable), the candidate fails -> reference, no judge;
    # 3: identical answers -> coins (unless their pass labels differ);
    # 4: reference label = tie coin; candidate failed
    win_row = win.rows[0]
    assert win_row.counts["judge_picked_first_shown"] == win_row.counts["by_judge"]
    rounds = {(line.split(" ")[1], line.split(" ")[3].rstrip(":")): line for line in win.labels}
    assert "reference shown first" in rounds[("1", "0")] and "candidate shown first" in rounds[("1", "1")]
    assert rounds[("1", "0")].split(": ")[1].startswith("reference") and rounds[("1", "1")].split(": ")[1].startswith("candidate")
    outcomes = {}
    for qid in "1234":
        votes = [rounds[(qid, r)].split(": ")[1].split(" ")[0] for r in "01"]
        outcomes[qid] = ("win" if votes.count("candidate") > votes.count("reference")
                         else "lose" if votes.count("candidate") < votes.count("reference") else "tie")
    assert outcomes["1"] == "tie" and outcomes["2"] == "lose"
    assert win_row.value == pytest.approx(list(outcomes.values()).count("win") / 4)
    assert win_row.extra["tie_rate"] == pytest.approx(list(outcomes.values()).count("tie") / 4)

    # a second run of the whole evaluation: no request, the same figures
    second = judge(server, cache, seed=0)
    sides2, win2 = run_all(second)
    assert len(server.bodies) == requests and second.cost.requests == 0 and second.cost.cache_hits > 0
    assert [r.per_run for r in sides2[0].rows + sides2[1].rows + win2.rows] == \
        [r.per_run for r in sides[0].rows + sides[1].rows + win.rows]


def test_legacy_function_calls_and_bad_replies(server, tmp_path):
    j = judge(server, tmp_path / "c.jsonl", call_style="functions")
    report = evaluate_pass([make_answer("1", "ok [first:Solved]")], j, metric="sopr", runs=1)
    assert report.rows[0].value == 1.0
    assert "functions" in server.bodies[0] and server.bodies[0]["function_call"] == {"name": "check_answer_status"}
    from tasks.toolbench.tooleval.judges import JudgeError

    bad = judge(server, tmp_path / "bad.jsonl", max_attempts=2)
    with pytest.raises(JudgeError, match="no valid reply in 2 attempts"):
        evaluate_pass([make_answer("1", "x [first:Maybe]")], bad, metric="sopr", runs=1)
    assert bad.cost.retries == 1 and not (tmp_path / "bad.jsonl").exists()  # invalid replies are not cached


def test_an_api_key_is_never_sent_in_clear_to_another_host(monkeypatch):
    monkeypatch.setenv("TOOLEVAL_TEST_KEY", "sk-secret")
    with pytest.raises(ValueError, match="plain HTTP"):
        OpenAIJudge(OpenAIJudgeConfig(base_url="http://judge.example.org/v1", api_key_env="TOOLEVAL_TEST_KEY"))
    OpenAIJudge(OpenAIJudgeConfig(base_url="http://127.0.0.1:9/v1", api_key_env="TOOLEVAL_TEST_KEY")).close()
