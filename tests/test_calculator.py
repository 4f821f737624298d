"""Calculator task and tool: rewards (a table), the safe evaluator, data and demonstrations."""

import random

import pytest

from orchestrator.rollout.episode import Episode
from orchestrator.tools.base import ToolError
from orchestrator.tools.calculator import Calculator, evaluate, format_number
from tasks.calculator import exact_match_reward
from tests.conftest import make_task


@pytest.mark.parametrize(
    "text, answer, reward",
    [
        ("Result=10.1<submit>", 10.1, 1.0),
        ("<request><Calculator>13.1-3<call>\n\nResult=10.1<submit>", 10.1, 1.0),
        ("Result = 10.105<submit>", 10.1, 1.0),  # within 0.01
        ("Result=10.12<submit>", 10.1, 0.0),  # 0.02 away
        ("Result=-7.9<submit>", -7.9, 1.0),
        ("Result=10.1", 10.1, 0.0),  # never submitted
        ("Result=12<submit> Result=10.1<submit>", 10.1, 0.0),  # the first answer counts
        ("10.1<submit>", 10.1, 0.0),
        ("", 1.0, 0.0),
    ],
)
def test_reward_table(text, answer, reward):
    assert exact_match_reward(text, answer, 0.01) == reward


def test_reward_reads_model_segments_only():
    task = make_task('calculator')
    ep = Episode.from_prompt([1], "What is 2*3?\n\n", {"answer": 6})
    ep.add("model", [2], "<request><Calculator>2*3<call>")
    ep.add("tool", [3], "Result=6<submit><response>")
    ep.add("model", [4], "\n\nResult=5<submit>")
    assert task.reward(ep) == 0.0


@pytest.mark.parametrize("expr, value", [("13.1-3", 10.1), ("4*3", 12), ("(1+2)*-3", -9), ("2**10", 1024), ("7/2", 3.5)])
def test_evaluate(expr, value):
    assert evaluate(expr) == pytest.approx(value)


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "a+1", "1/0", "2**100000", "[1]*3", "", "1e308*10", "'x'*3"])
def test_evaluate_refuses(expr):
    with pytest.raises(ToolError):
        evaluate(expr)


def test_calculator_rounds():
    assert Calculator(round_digits=2).call("1/3") == "0.33"
    assert Calculator().call("12.1+1") == "13.1"
    assert Calculator().call("4*3") == "12"
    assert format_number(-7.9000001, 2) == "-7.9"


def test_problems_follow_the_seed_format():
    task = make_task('calculator')
    problems = [p for p, _ in zip(task.train_problems(0), range(300))]
    for p in problems:
        a, b = p.meta["expression"].replace("*", "+").replace("-", "+").split("+", 1)
        assert 0 <= float(a) <= 50 and 0 <= float(b) <= 50
        assert p.question == f"What is {p.meta['expression']}?"
    assert {p.meta["expression"][len(p.meta['expression'].rstrip('0123456789.')) - 1] for p in problems} <= set("+-*")
    assert any("." in p.meta["expression"] for p in problems) and any("." not in p.meta["expression"] for p in problems)


def test_eval_set_is_fixed_and_held_out():
    task = make_task('calculator', num_eval=64)
    assert [p.question for p in task.eval_problems()] == [p.question for p in make_task('calculator', num_eval=64).eval_problems()]
    held = {p.question for p in task.eval_problems()}
    train = [p.question for p, _ in zip(task.train_problems(0), range(2000))]
    assert not held & set(train)
    other = [p.question for p, _ in zip(task.train_problems(1), range(50))]
    assert train[:50] != other  # the seed changes the data order


def test_demonstrations_leave_room_for_rl():
    task = make_task('calculator', demo_tool_frac=0.3, demo_practice_frac=1.0)
    demos = task.demonstrations(2000, random.Random(0))
    assert len(demos) == 4000
    decisions = [d for d in demos if d[0][0] == "prompt" and not d[0][1].endswith(">")]
    used = sum(d[1][1].startswith("<request>") for d in decisions) / len(decisions)
    assert 0.25 < used < 0.35
    # direct answers are often wrong, as a model without the tool would be
    direct = [d for d in decisions if d[1][1].startswith("Result=")]
    assert len(direct) > 0
    # practice demos never put the decision to call under the loss
    practice = [d for d in demos if d[0][1].endswith(f"<request><{task.spec.tool_name}>")]
    assert len(practice) == 2000 and all(d[1][0] == "model" and not d[1][1].startswith("<request>") for d in practice)


def test_calculator_keeps_the_decimals_of_its_query():
    keeping = Calculator(keep_decimals=True)
    assert [keeping.call(q) for q in ("30*37.3", "4*3", "12.1+1", "17.5*18.4", "1/3")] == \
        ["1119.0", "12", "13.1", "322.0", "0.33"]
    assert Calculator().call("30*37.3") == "1119"  # the seed's format
    assert format_number(1119.0, 2, min_decimals=1) == "1119.0" and format_number(7.25, 2, min_decimals=1) == "7.25"


def test_demonstrations_show_exactly_what_the_tool_answers():
    task = make_task("calculator")
    tool = Calculator(round_digits=task.spec.round_digits, keep_decimals=task.spec.tool_keeps_decimals)
    demos = task.demonstrations(300, random.Random(0))
    calls = [d for d in demos if len(d) == 4]
    assert calls
    for d in calls:
        expression = (d[0][1] + d[1][1]).rsplit("<request><Calculator>", 1)[1].removesuffix("<call>")
        assert d[2][1] == tool.call(expression) + "<response>"


@pytest.mark.parametrize("expr", ["(((9**99)**99)**99)**99", "99**99**99", "(2**99)*(2**99)**99"])
def test_huge_intermediate_results_are_refused_not_computed(expr):
    """Bounding the exponent alone let ``(((9**99)**99)**99)**99`` (23 characters) hold the GIL for
    more than 10 s, so the actor was killed and its whole batch timed out. Each power's size is
    checked before it is computed: the query gets its own short error."""
    with pytest.raises(ToolError, match="too large"):
        evaluate(expr)
    calculator = Calculator()
    with pytest.raises(ToolError, match="too large"):  # the pool gives the model this error as the observation
        calculator.call(expr)
    assert calculator.call("2+3") == "5"  # the next query is answered as usual
