"""The virtual API server in process: replaying the sample's trees, the cache key, argument
checks, the schema simulator, StableToolBench's cache files, the LLM simulator's write-back
and the real API failing closed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from orchestrator.tools.base import ToolError
from tasks.toolbench.formats import read_answer_file
from tasks.toolbench.inference.batch import local_backend
from tasks.toolbench.inference.env import APIRef, QueryEnv
from tasks.toolbench.paths import toolbench_sample_dir
from tasks.toolbench.server import BadRequest, ServerConfig, VirtualAPIServer
from tasks.toolbench.server.cache import ResponseCache, cache_key
from tasks.toolbench.server.registry import APIRegistry, from_function
from tasks.toolbench.server.seeding import recorded_calls, recover_body
from tasks.toolbench.server.simulate import simulate_body, simulate_value, simulator_rng
from tasks.toolbench.server.tool import VirtualRapidAPI
from tasks.toolbench.server.validate import argument_error, execution_error

ANSWERS = toolbench_sample_dir() / "answer"
FIXTURE = Path(__file__).parent / "fixtures" / "toolbench_inference" / "queries.json"


@pytest.fixture(scope="module")
def sample_server() -> VirtualAPIServer:
    return VirtualAPIServer(ServerConfig(answer_paths=[str(ANSWERS)]))


def tree_calls(node, parent=None):
    """(Action node, Action Input node) pairs of a tree, in tree order."""
    if node.node_type == "Action Input" and parent is not None and parent.node_type == "Action":
        yield parent, node
    for child in node.children:
        yield from tree_calls(child, node)


def drive(env: QueryEnv, action: str, action_input: str, api) -> tuple[str, int, str | None]:
    """One call through the environment (the search's path to the server)."""
    gen = env.step(action, action_input)
    try:
        request = next(gen)
    except StopIteration as stop:
        return stop.value.observation, stop.value.code, stop.value.source
    try:
        gen.send(api([request.request])[0])
    except StopIteration as stop:
        return stop.value.observation, stop.value.code, stop.value.source
    raise AssertionError("the environment asked for a second call")


def test_replaying_the_valid_sample_trees_hits_the_cache_byte_for_byte(sample_server):
    files = sorted(ANSWERS.glob("*/*.json"))
    valid = [read_answer_file(f) for f in files]
    valid = [a for a in valid if a.valid_data]
    assert len(files) == 15 and len(valid) == 13
    api = local_backend(sample_server)
    replayed, sources = 0, {}
    for answer in valid:
        apis = {}
        for fn in answer.functions:
            served = from_function(fn)
            if served is not None:
                apis[fn["name"]] = APIRef("", served.tool, served.api)
        env = QueryEnv("q", answer.query, list(answer.functions), apis, "")
        for action, action_input in tree_calls(answer.tree):
            if action_input.observation_code != 0:
                continue
            observation, code, source = drive(env, action.description, action_input.description, api)
            assert observation == action_input.observation, (answer.file, action.description)
            assert code == 0
            sources[source] = sources.get(source, 0) + 1
            replayed += 1
    assert replayed == 184 and sources == {"cache": 184}


def test_the_cache_key_is_canonical():
    assert cache_key("t", "a", {"x": 1, "y": "b"}) == cache_key("t", "a", {"y": "b", "x": 1})
    assert cache_key("t", "a", {"x": 1}) != cache_key("t", "a", {"x": "1"})
    # The sample's 209 recorded calls that returned code 0: 86 argument strings, 84 calls.
    registry, raw, keys = APIRegistry(), set(), set()
    calls = [c for f in sorted(ANSWERS.glob("*/*.json")) for c in recorded_calls(f, registry)]
    for f in sorted(ANSWERS.glob("*/*.json")):
        answer = read_answer_file(f)
        raw |= {(a.description, i.description) for a, i in tree_calls(answer.tree) if i.observation_code == 0}
    keys = {cache_key(c.api.tool, c.api.api, c.arguments) for c in calls}
    assert (len(calls), len(raw), len(keys)) == (209, 86, 84)


def test_the_validator_writes_the_error_the_real_call_recorded():
    answer = read_answer_file(ANSWERS / "G3_answer" / "13_ChatGPT_DFS_woFilter_w2.json")
    fn = next(f for f in answer.functions if f["name"] == "search_basic_free_for_streaming_availability")
    served = from_function(fn)
    recorded = next(json.loads(i.observation)["error"] for a, i in tree_calls(answer.tree)
                    if "unexpected keyword" in (i.observation or ""))
    args = next(json.loads(i.description) for a, i in tree_calls(answer.tree) if "unexpected keyword" in (i.observation or ""))
    problem = argument_error(served.api, args, served.required, served.optional)
    assert execution_error("Movies", served.tool, served.api, problem) == recorded


def test_bad_calls_get_toolbench_errors_and_code_2():
    server = VirtualAPIServer(ServerConfig(query_files=[str(FIXTURE)]))
    base = {"category": "Weather", "tool_name": "sky_cast", "api_name": "current_weather", "strip": "", "toolbench_key": ""}
    unexpected = server.handle({**base, "tool_input": '{"city": "Oslo", "zip": 1}'})
    assert unexpected.body == {"error": "Function executing from my_tools.Weather.sky_cast.api import current_weather "
                                        "error...\ncurrent_weather() got an unexpected keyword argument 'zip'", "response": ""}
    assert unexpected.status_code == 2 and unexpected.source == "invalid"
    fx = {**base, "category": "Finance", "tool_name": "fx_rates", "api_name": "convert"}
    missing = server.handle({**fx, "tool_input": "{}"})
    assert missing.error.endswith("convert() missing 3 required positional arguments: 'is_from', 'to', and 'amount'")
    not_json = server.handle({**base, "tool_input": "city=Oslo"})
    assert not_json.body == {"error": "Tool input parse error...\n", "response": ""}
    ok = server.handle({**base, "tool_input": '{"city": "Oslo"}'})
    assert ok.source == "simulated" and ok.status_code == 0 and "'city': 'Oslo'" in ok.body["response"]
    assert server.source_counts() == {"invalid": 3, "simulated": 1}
    with pytest.raises(BadRequest, match="lacks tool_input"):
        server.handle({k: v for k, v in base.items()})


def test_schema_simulator_is_deterministic_and_follows_the_schema():
    schema = {"items": [{"id": "str", "score": "float", "_list_length": 3}], "tags": ["list of str with length 4"],
              "none": "NoneType", "flags": "empty list", "count": "int", "ok": "bool", "city": "str"}
    value = simulate_value(schema, simulator_rng(0, "k"), {"city": "Oslo"})
    assert len(value["items"]) == 3 and set(value["items"][0]) == {"id", "score"}
    assert len(value["tags"]) == 4 and all(isinstance(t, str) for t in value["tags"])
    assert value["none"] is None and value["flags"] == [] and isinstance(value["count"], int)
    assert isinstance(value["ok"], bool) and value["city"] == "Oslo"
    assert simulate_body(schema, 0, "k", {}) == simulate_body(schema, 0, "k", {})
    assert simulate_body(schema, 0, "k", {}) != simulate_body(schema, 1, "k", {})
    assert simulate_body(schema, 0, "k", {}) != simulate_body(schema, 0, "other", {})
    # A schema given as JSON text (StableToolBench has 230 such).
    assert set(simulate_value('{"result": "float", "rate": "float"}', simulator_rng(0, "k"), {})) == {"result", "rate"}


def test_observations_are_cut_at_1024_characters(sample_server):
    long = VirtualAPIServer(ServerConfig(query_files=[str(FIXTURE)]))
    response = long.handle({"category": "Weather", "tool_name": "sky_cast", "api_name": "current_weather",
                            "tool_input": '{"city": "' + "a" * 2000 + '"}'})  # the simulator echoes the city
    text = json.dumps(response.body)
    assert len(text) > 1024 and response.observation() == text[:1024] + "..."
    # A recorded observation that ToolBench had cut gives its body back as far as the cut ...
    head = '{"error": "", "response": "'
    cut = (head + "abc" + "x\\u00e9" * 300)[:1024] + "..."  # the cut falls between two escapes
    assert json.dumps(recover_body(cut))[:1024] + "..." == cut
    # ... or up to the escape sequence the cut went through.
    torn = (head + "x\\u00e9" * 300)[:1024] + "..."
    recovered = json.dumps(recover_body(torn))
    assert torn.startswith(recovered[:-2]) and len(recovered) > 1015


def test_stabletoolbench_cache_files_are_imported(tmp_path):
    folder = tmp_path / "tool_response_cache" / "Weather" / "sky_cast_for_Weather"
    folder.mkdir(parents=True)
    (folder / "current_weather.json").write_text(json.dumps(
        {str({"city": "Oslo", "units": "metric"}): {"error": "", "response": "-3 C, snow"}}))
    server = VirtualAPIServer(ServerConfig(query_files=[str(FIXTURE)], stabletoolbench_cache=str(folder.parent.parent)))
    # Another key order and JSON quoting: one call, one key.
    response = server.handle({"category": "Weather", "tool_name": "sky_cast", "api_name": "current_weather",
                              "tool_input": '{"units": "metric", "city": "Oslo"}'})
    assert response.source == "cache" and response.body == {"error": "", "response": "-3 C, snow"}


class _FakeChat(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions that answers one JSON body and keeps requests."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeChat.requests.append(body)
        content = json.dumps({"error": "", "response": {"headline": "Snow in Oslo"}})
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_llm_simulator_answers_apis_without_schema_and_is_written_back(tmp_path):
    http = HTTPServer(("127.0.0.1", 0), _FakeChat)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        queries = json.loads(FIXTURE.read_text())
        queries[1]["api_list"][0]["template_response"] = None  # Book Finder: no schema
        qfile = tmp_path / "q.json"
        qfile.write_text(json.dumps(queries))
        cfg = {"query_files": [str(qfile)], "cache_file": str(tmp_path / "cache.jsonl"),
               "llm": {"base_url": f"http://127.0.0.1:{http.server_port}/v1", "model": "fake"}}
        body = {"category": "Data", "tool_name": "book_finder", "api_name": "search_books", "tool_input": '{"title": "Dune"}'}
        first = VirtualAPIServer(ServerConfig(**cfg)).handle(body)
        assert first.source == "llm" and first.body == {"error": "", "response": {"headline": "Snow in Oslo"}}
        sent = _FakeChat.requests[-1]
        assert sent["temperature"] == 0.0 and sent["response_format"] == {"type": "json_object"}
        assert '"title": "Dune"' in sent["messages"][1]["content"]
        # APIs with a schema still get the schema simulator; the LLM is asked only when needed.
        assert VirtualAPIServer(ServerConfig(**cfg)).handle(
            {**body, "category": "Weather", "tool_name": "sky_cast", "api_name": "current_weather",
             "tool_input": '{"city": "Oslo"}'}).source == "simulated"
        asked = len(_FakeChat.requests)
        again = VirtualAPIServer(ServerConfig(**cfg)).handle(body)  # a new server reads the written-back cache
        assert again.source == "cache" and again.body == first.body and len(_FakeChat.requests) == asked
    finally:
        http.shutdown()


def test_real_api_is_never_called_without_a_key(monkeypatch):
    monkeypatch.delenv("TOOLRL_TEST_NO_KEY", raising=False)
    server = VirtualAPIServer(ServerConfig(query_files=[str(FIXTURE)],
                                           real={"service_url": "http://127.0.0.1:9/rapidapi", "key_env": "TOOLRL_TEST_NO_KEY"}))
    called = []
    monkeypatch.setattr(server.real, "call", lambda *a, **k: called.append(a))
    response = server.handle({"category": "Weather", "tool_name": "sky_cast", "api_name": "current_weather",
                              "tool_input": '{"city": "Oslo"}'})
    assert response.source == "simulated" and called == []


def test_the_tool_answers_json_records_and_cache_files_round_trip(tmp_path, sample_server):
    tool = VirtualRapidAPI(answer_paths=[str(ANSWERS / "G1_answer")])
    record = json.loads(tool.call(json.dumps({"category": "Logistics", "tool_name": "transitaires",
                                              "api_name": "transitaires", "tool_input": "{}"})))
    assert set(record) == {"observation", "code", "source"} and record["source"] == "cache"
    assert record["observation"].startswith('{"error": "", "response": "[{\\"id\\":\\"EKVF\\"')
    with pytest.raises(ToolError, match="JSON request body"):
        tool.call("not json")
    path = sample_server.cache.save(tmp_path / "cache.jsonl")
    copy = ResponseCache()
    assert copy.load(path) == len(sample_server.cache) == 84
    assert copy.items() == sorted(sample_server.cache.items())
