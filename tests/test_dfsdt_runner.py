"""The evaluation run over many queries (in process): answer files, resume, determinism, and
a tiny Hugging Face model built here as the policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks.toolbench.formats import read_answer_file
from tasks.toolbench.inference.batch import STATS_FILE
from tasks.toolbench.inference.queries import env_from_query, load_queries
from tasks.toolbench.inference.runner import run_evaluation
from tasks.toolbench.inference.search import LLMCall

FIXTURE = Path(__file__).parent / "fixtures" / "toolbench_inference" / "queries.json"
ANSWER = '{"return_type": "give_answer", "final_answer": "here it is"}'
SERVER = {"query_files": [str(FIXTURE)]}
LOCAL = {"use_ray": False, "progress": False, "queries_per_batch": 1}


def step(thought: str, action: str, action_input: str) -> str:
    return f"\nThought: {thought}\nAction: {action}\nAction Input: {action_input}</s>"


def scripted_replies() -> dict[str, list[str]]:
    """Per query: call its first API with the documented example arguments, give up, call
    it again with other arguments, answer."""
    replies = {}
    for query in load_queries(FIXTURE):
        env = env_from_query(query)
        fn = env.functions[0]
        args = {k: v.get("example_value", "x") for k, v in fn["parameters"]["properties"].items()
                if k in fn["parameters"]["required"]}
        replies[env.query_id] = [
            step("Look it up.", fn["name"], json.dumps(args)),
            step("Not useful.", "Finish", '{"return_type": "give_up_and_restart"}'),
            step("Another way.", fn["name"], json.dumps({**args, "extra": 1})),  # a bad argument: invalid
            step("Enough.", "Finish", ANSWER),
        ]
    return replies


def answers(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}


def test_run_writes_toolbench_answer_files_and_reports_figures(tmp_path):
    metrics = run_evaluation(FIXTURE, {"kind": "scripted", "replies": scripted_replies()}, {"method": "dfsdt"},
                             SERVER, tmp_path / "a", seed=3, runner_cfg=LOCAL)
    files = answers(tmp_path / "a")
    assert sorted(files) == ["101_DFS_woFilter_w2.json", "102_DFS_woFilter_w2.json", "103_DFS_woFilter_w2.json"]
    answer = read_answer_file(tmp_path / "a" / "101_DFS_woFilter_w2.json")  # helper-2's strict reader
    assert answer.valid_data and answer.finish_type == "give_answer" and answer.query_count == 4
    assert metrics["eval/queries"] == 3 and metrics["eval/answered_frac"] == 1.0
    assert metrics["eval/llm_calls_mean"] == 4 and metrics["eval/api_calls_mean"] == 2
    assert metrics["eval/source/simulated"] == 3 and metrics["eval/source/invalid"] == 3
    assert metrics["eval/tokens_total"] > 0 and metrics["eval/seconds_total"] >= 0
    rows = [json.loads(line) for line in (tmp_path / "a" / STATS_FILE).read_text().splitlines()]
    assert {r["query_id"] for r in rows} == {"101", "102", "103"}
    assert all(r["llm_calls"] == 4 and r["sources"] == {"invalid": 1, "simulated": 1} for r in rows)
    # The same seed gives the same files (the server learns the APIs from the queries' own
    # file when told nothing); another seed changes the simulated observations.
    run_evaluation(FIXTURE, {"kind": "scripted", "replies": scripted_replies()}, {"method": "dfsdt"}, {},
                   tmp_path / "b", seed=3, runner_cfg=LOCAL)
    assert answers(tmp_path / "b") == files
    run_evaluation(FIXTURE, {"kind": "scripted", "replies": scripted_replies()}, {"method": "dfsdt"}, SERVER,
                   tmp_path / "c", seed=4, runner_cfg=LOCAL)
    assert answers(tmp_path / "c") != files


def test_a_crashed_run_resumes_and_skips_what_was_finished(tmp_path):
    replies = scripted_replies()
    broken = {**replies, "103": replies["103"][:1]}  # query 103's policy dies on its second call
    with pytest.raises(IndexError):
        run_evaluation(FIXTURE, {"kind": "scripted", "replies": broken}, {"method": "dfsdt"}, SERVER,
                       tmp_path / "run", runner_cfg=LOCAL)
    assert sorted(answers(tmp_path / "run")) == ["101_DFS_woFilter_w2.json", "102_DFS_woFilter_w2.json"]
    # A policy that would fail on 101 and 102 proves they are not searched again.
    resumed = {"103": replies["103"]}
    metrics = run_evaluation(FIXTURE, {"kind": "scripted", "replies": resumed}, {"method": "dfsdt"}, SERVER,
                             tmp_path / "run", runner_cfg=LOCAL)
    assert metrics["eval/skipped"] == 2 and metrics["eval/searched"] == 1 and metrics["eval/queries"] == 3
    run_evaluation(FIXTURE, {"kind": "scripted", "replies": replies}, {"method": "dfsdt"}, SERVER, tmp_path / "clean",
                   runner_cfg=LOCAL)
    assert answers(tmp_path / "run") == answers(tmp_path / "clean")
    # A torn answer file (a crash mid-write leaves none: writes are atomic) is searched again.
    (tmp_path / "run" / "102_DFS_woFilter_w2.json").write_text("{")
    metrics = run_evaluation(FIXTURE, {"kind": "scripted", "replies": replies}, {"method": "dfsdt"}, SERVER,
                             tmp_path / "run", runner_cfg=LOCAL)
    assert metrics["eval/searched"] == 1 and answers(tmp_path / "run") == answers(tmp_path / "clean")


def test_react_run_writes_cot_files(tmp_path):
    replies = {qid: r[:2] + r[2:] for qid, r in scripted_replies().items()}
    metrics = run_evaluation(FIXTURE, {"kind": "scripted", "replies": replies}, {"method": "react", "pass_at": 2},
                             SERVER, tmp_path, num_queries=2, runner_cfg=LOCAL)
    assert sorted(answers(tmp_path)) == ["101_CoT@2.json", "102_CoT@2.json"]
    data = json.loads((tmp_path / "101_CoT@2.json").read_text())
    assert data["try_count"] == 2 and data["win"] and metrics["eval/answered_frac"] == 1.0


# --- a tiny Hugging Face model, built here, as the policy -------------------------------


def build_tiny_checkpoint(folder: Path) -> Path:
    """A random 2-layer Llama with a byte-level tokenizer, saved like a run's checkpoint
    (``<folder>/model/``)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    vocab["</s>"], vocab["<pad>"] = len(vocab), len(vocab) + 1
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=384,
                         eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"], bos_token_id=None)
    target = folder / "model"
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))


def test_hf_policy_rows_do_not_depend_on_their_batch(tiny_checkpoint):
    from tasks.toolbench.inference.hf_policy import HFPolicy
    from tasks.toolbench.inference.prompts import initial_messages

    policy = HFPolicy(path=str(tiny_checkpoint), max_new_tokens=12, temperature=1.0, seed=5)
    envs = [env_from_query(q) for q in load_queries(FIXTURE)]
    calls = [LLMCall(e.query_id, 0, initial_messages(e.task_description, e.query), e.functions) for e in envs]
    alone = policy.generate(calls[:1])[0]
    together = policy.generate(calls)
    assert together[0] == alone
    assert 0 < alone.completion_tokens <= 12 and alone.prompt_tokens == 384 - 12  # long prompt cut from the left
    again = HFPolicy(path=str(tiny_checkpoint / "model"), max_new_tokens=12, temperature=1.0, seed=6).generate(calls[:1])[0]
    assert again.text != alone.text  # the seed matters


def test_hf_policy_run_is_deterministic(tiny_checkpoint, tmp_path):
    policy = {"kind": "hf", "path": str(tiny_checkpoint), "max_new_tokens": 8, "temperature": 1.0}
    cfg = {**LOCAL, "queries_per_batch": 3}
    first = run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER, tmp_path / "a", seed=1, runner_cfg=cfg)
    run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER, tmp_path / "b", seed=1, runner_cfg=cfg)
    assert answers(tmp_path / "a") == answers(tmp_path / "b") and len(answers(tmp_path / "a")) == 3
    # A random model writes no well-formed step: every child is a parse error, none an action.
    assert first["eval/parse_errors_total"] == first["eval/llm_calls_total"] == 6
    shutil.rmtree(tmp_path / "b")


# --- an OpenAI-compatible endpoint as the policy ------------------------------------------


class _FakeEndpoint:
    """A local stand-in for vLLM / a hosted model: /completions returns a scripted step,
    /chat/completions a tool call; both record what they were sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        sent = self.sent = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sent.append((self.path, body))
                usage = {"prompt_tokens": 11, "completion_tokens": 7}
                if self.path.endswith("/chat/completions"):
                    message = {"role": "assistant", "content": "Answer now.",
                               "tool_calls": [{"id": "c1", "type": "function",
                                               "function": {"name": "Finish", "arguments": ANSWER}}]}
                    data = {"choices": [{"message": message}], "usage": usage}
                else:
                    data = {"choices": [{"text": step("Answer now.", "Finish", ANSWER)[:-4]}], "usage": usage}
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"


@pytest.mark.parametrize("mode", ["completions", "chat"])
def test_openai_compatible_endpoint_as_policy(tmp_path, mode):
    endpoint = _FakeEndpoint()
    try:
        policy = {"kind": "openai", "base_url": endpoint.url, "model": "toolllama", "mode": mode}
        metrics = run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER, tmp_path, seed=9, num_queries=2,
                                 runner_cfg=LOCAL)
    finally:
        endpoint.http.shutdown()
    assert metrics["eval/answered_frac"] == 1.0 and metrics["eval/tokens_total"] == 2 * 18
    route, body = endpoint.sent[0]
    if mode == "completions":
        # The SFT template's text, ending where the model writes its step, stopped at </s>.
        assert route == "/v1/completions" and body["prompt"].endswith("\nAssistant: ") and body["stop"] == ["</s>"]
        assert body["prompt"].startswith("System: You are AutoGPT")
    else:
        assert route == "/v1/chat/completions" and body["tools"][-1]["function"]["name"] == "Finish"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # Each request's seed is the call's own (run seed, query, call index), not the batch's.
    from tasks.toolbench.inference.policy import call_seed

    assert body["seed"] == call_seed(9, LLMCall("101", 0, [], [])) % 2**31 and body["temperature"] == 0.0
