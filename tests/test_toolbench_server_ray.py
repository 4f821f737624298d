"""The virtual API server on Ray: in tool actors and on Ray Serve (StableToolBench's
``POST /virtual`` from a real HTTP client), and the evaluation run spread over Ray workers.
One local Ray cluster for the module; Serve is started once."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from orchestrator.tools.base import ToolCall
from orchestrator.tools.pool import PoolOptions, build_router
from tasks.toolbench.paths import toolbench_sample_dir
from tasks.toolbench.server.wire import cut_observation

# Ray Serve 2.60's own config classes warn about their pydantic use on import.
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FIXTURE = Path(__file__).parent / "fixtures" / "toolbench_inference" / "queries.json"
SERVER_CFG = {"answer_paths": [str(toolbench_sample_dir() / "answer")], "query_files": [str(FIXTURE)], "seed": 7}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stabletoolbench_body(category: str, tool: str, api: str, tool_input: str) -> dict:
    """The body StableToolBench's rapidapi_wrapper posts (Downstream_tasks/rapidapi.py)."""
    return {"category": category, "tool_name": tool, "api_name": api, "tool_input": tool_input, "strip": "",
            "toolbench_key": "EMPTY"}


def test_http_endpoint_answers_as_the_tool_actors_do(local_ray, tmp_path):
    from tasks.toolbench.server.serve import SOURCE_HEADER, start_http, stop_http

    router = build_router([{"_target_": "tasks.toolbench.server.tool.VirtualRapidAPI", "name": "RapidAPI", **SERVER_CFG}],
                          PoolOptions(num_actors=1, timeout_s=60))
    url = start_http(SERVER_CFG, port=free_port())
    try:
        bodies = [
            stabletoolbench_body("Logistics", "transitaires", "transitaires", "{}"),  # recorded, cut at 1,024
            stabletoolbench_body("Movies", "streaming_availability", "get_basic_free",
                                 '{"country": "US", "imdb_id": "tt2937898"}'),
            stabletoolbench_body("Weather", "sky_cast", "forecast", '{"city": "Oslo", "days": 3}'),  # simulated
            stabletoolbench_body("Weather", "sky_cast", "forecast", '{"town": "Oslo"}'),  # invalid
            stabletoolbench_body("Weather", "sky_cast", "forecast", "city: Oslo"),  # not JSON
        ]
        records = [json.loads(r.text) for r in router.call([ToolCall("RapidAPI", json.dumps(b)) for b in bodies])]
        assert [r["source"] for r in records] == ["cache", "cache", "simulated", "invalid", "invalid"]
        for body, record in zip(bodies, records):
            reply = requests.post(url, json=body, timeout=30)
            assert reply.status_code == 200
            # StableToolBench's client: json.dumps(response.json()), cut at 1,024 characters.
            assert cut_observation(json.dumps(reply.json())) == record["observation"]
            assert reply.headers[SOURCE_HEADER] == record["source"]
        assert len(records[0]["observation"]) == 1027
        bad = requests.post(url, json={"category": "Weather"}, timeout=30)
        assert bad.status_code == 422 and "lacks" in bad.json()["error"]
        # Our runner, pointed at the endpoint as it would be at StableToolBench's server,
        # writes the same answer files as with the server in process.
        from tasks.toolbench.inference.runner import run_evaluation
        from tests.test_dfsdt_runner import answers, scripted_replies

        policy = {"kind": "scripted", "replies": scripted_replies()}
        over_http = run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, {}, tmp_path / "http", seed=7,
                                   runner_cfg={"use_ray": False, "progress": False, "server_url": url})
        run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER_CFG, tmp_path / "here", seed=7,
                       runner_cfg={"use_ray": False, "progress": False})
        assert answers(tmp_path / "http") == answers(tmp_path / "here") and over_http["eval/source/invalid"] == 3
    finally:
        stop_http()
        router.shutdown()


def test_evaluation_on_ray_workers_matches_the_run_in_process(local_ray, tmp_path):
    from tasks.toolbench.inference.runner import run_evaluation
    from tests.test_dfsdt_runner import SERVER, answers, scripted_replies

    policy = {"kind": "scripted", "replies": scripted_replies()}
    on_ray = run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER, tmp_path / "ray", seed=2,
                            runner_cfg={"num_workers": 2, "queries_per_batch": 1, "worker_num_cpus": 0.5,
                                        "progress": False})
    run_evaluation(FIXTURE, policy, {"method": "dfsdt"}, SERVER, tmp_path / "here", seed=2,
                   runner_cfg={"use_ray": False, "progress": False})
    assert answers(tmp_path / "ray") == answers(tmp_path / "here") and len(answers(tmp_path / "ray")) == 3
    assert on_ray["eval/searched"] == 3 and on_ray["eval/source/simulated"] == 3
