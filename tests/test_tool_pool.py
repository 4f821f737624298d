"""Tools in Ray actors: failures become observations, dead or hung actors are restarted."""

import pytest

from tests.conftest import ensure_local_ray

from orchestrator.tools.base import ToolCall
from orchestrator.tools.pool import PoolOptions, build_router

pytestmark = pytest.mark.ray

FAULTY = {"_target_": "tests.faulty_tools.Faulty", "name": "Faulty"}
CALC = {"_target_": "orchestrator.tools.calculator.Calculator", "name": "Calculator"}


@pytest.fixture(scope="module")
def router():
    ensure_local_ray()
    r = build_router([FAULTY, CALC], PoolOptions(num_actors=2, timeout_s=8.0))
    yield r
    r.shutdown()


def test_batch_is_answered_in_order_across_pools(router):
    calls = [ToolCall("Faulty", str(i)) for i in range(7)] + [ToolCall("Calculator", "6*7"), ToolCall("Nope", "x")]
    results = router.call(calls)
    assert [r.text for r in results[:7]] == [f"ok:{i}" for i in range(7)]
    assert results[7].text == "42" and results[7].ok
    assert results[8].error == "unknown_tool" and "Calculator, Faulty" in results[8].text


def test_tool_exception_is_an_observation(router):
    (result,) = router.call([ToolCall("Faulty", "raise")])
    assert result.error == "tool_error" and "asked to fail" in result.text
    assert router.call([ToolCall("Faulty", "after")])[0].text == "ok:after"


def test_hung_tool_times_out_and_actor_restarts(router):
    results = router.call([ToolCall("Faulty", "hang"), ToolCall("Calculator", "1+1")])
    assert results[0].error == "timeout" and results[1].text == "2"
    # the killed actor is restarted by Ray and serves again
    again = router.call([ToolCall("Faulty", f"x{i}") for i in range(4)])
    assert [r.text for r in again] == [f"ok:x{i}" for i in range(4)]


def test_dead_actor_is_an_observation_and_is_restarted(router):
    before = router.call([ToolCall("Faulty", "pid")])[0].text  # served by the first actor, which "die" kills
    assert before.isdigit()
    results = router.call([ToolCall("Faulty", "die"), ToolCall("Faulty", "fine")])
    assert results[0].error == "actor_died" and results[1].text == "ok:fine"
    after = [r.text for r in router.call([ToolCall("Faulty", "pid"), ToolCall("Faulty", "pid")])]
    assert before not in after  # a new process took its place
    assert router.stats.errors.get("actor_died", 0) >= 1


def test_tools_report_their_isolation_for_the_run_config(router):
    assert router.info() == {"Faulty": {"isolation": {"full": True, "mode": "none-needed"}}}
