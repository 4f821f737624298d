"""ToolEval scoring: the pass-rate / SoPR / win-rate arithmetic (scripted judge), the rules
judge on ToolBench's 15 sample answer trees, the answer formats, prompts and replay.

The same arithmetic through a real HTTP judge is in tests/test_tooleval_server.py."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.toolbench.tooleval.converted import ConvertedFormatError, answer_from_entry, read_converted, write_converted
from tasks.toolbench.tooleval.draws import coin
from tasks.toolbench.tooleval.evaluate import evaluate_pass, evaluate_win
from tasks.toolbench.tooleval.judges import RecordingJudge, ReplayJudge, RulesJudge, ScriptedJudge, JudgeError
from tasks.toolbench.tooleval.pass_rate import PASS_TABLE, sopr, tooleval_pass_rate
from tasks.toolbench.tooleval.prompts import load_prompts
from tasks.toolbench.tooleval.records import EvalAnswer

REPO = Path(__file__).resolve().parents[1]


def sample_answers_dir() -> Path | None:
    try:
        from tasks.toolbench.paths import toolbench_sample_dir

        folder = toolbench_sample_dir() / "answer"
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


SAMPLES = sample_answers_dir()
needs_samples = pytest.mark.skipif(SAMPLES is None, reason="shared/data/toolbench/data_example not found")


def make_answer(qid: str, text: str, *, query: str = "q?", finished: bool = True, model: str = "m",
                group: str = "G1", calls: list[dict] | None = None, relevant: tuple[str, ...] | None = None) -> EvalAnswer:
    """A converted-format answer whose chain is ``calls`` then (when finished) a Finish call."""
    final = json.dumps({"return_type": "give_answer", "final_answer": text}) if finished else ""
    nodes = [{"role": "tool", "message": c} for c in calls or []]
    if finished:
        nodes.append({"role": "tool", "message": {"name": "Finish", "arguments": final, "response": ""}})
    chain: list = []
    for node in reversed([{"role": "system", "message": ""}, {"role": "user", "message": ""}, *nodes]):
        chain = [{**node, "next": chain}]
    entry = {"query": query, "available_tools": [{"name": "a_for_t"}, {"name": "Finish"}],
             "answer": {"method": "DFS_woFilter_w2", "total_steps": len(nodes) + 2, "final_answer": final,
                        "answer_details": chain}}
    return answer_from_entry(qid, entry, group=group, model=model, relevant_apis=relevant)


# ---------------------------------------------------------------------- prompts and formats


def test_prompt_templates_are_toolevals_word_for_word():
    prompts = load_prompts()
    assert set(prompts.functions) == {"check_answer_status", "parse_answer_status", "check_task_solvable",
                                      "select_better_answer"}
    for fn in prompts.functions.values():
        assert hashlib.sha256(fn.template.encode()).hexdigest() == fn.sha256
        assert fn.template.startswith("\n") and fn.template.endswith("\n")
        schema = fn.schema()
        assert schema["parameters"]["required"][-1] == "reason"
        assert fn.schema(with_reason=False)["parameters"]["required"] == fn.parameters["required"]  # not mutated
    assert "{query}" in prompts.functions["check_answer_status"].template
    assert set(re.findall(r"\{(\w+)\}", prompts.functions["select_better_answer"].template)) == {"query", "answer_0", "answer_1"}
    assert prompts.request == {"model": "gpt-3.5-turbo-16k", "max_tokens": 1000, "temperature": 0.2}


def test_a_reworded_template_is_refused(tmp_path):
    text = (REPO / "tasks/toolbench/tooleval/prompts/tooleval_default.yaml").read_text()
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("return \"Unsure\".", "return \"Unsure\"!", 1))
    with pytest.raises(ValueError, match="sha256"):
        load_prompts(str(changed))


def test_converted_round_trip_and_bad_entries_name_the_place(tmp_path):
    answers = [make_answer("1", "x"), make_answer("2", "y", finished=False)]
    path = write_converted(answers, tmp_path / "m" / "G1_instruction.json")
    back = read_converted(path)
    assert [a.query_id for a in back.values()] == ["1", "2"]
    assert back["1"].group == "G1_instruction" and back["1"].model == "m"
    assert back["1"].finished and not back["2"].finished and back["2"].gave_up
    assert back["1"].answer == answers[0].answer
    bad = json.loads(path.read_text())
    del bad["2"]["answer"]["answer_details"]
    path.write_text(json.dumps(bad))
    with pytest.raises(ConvertedFormatError, match=r"G1_instruction.json: \['2'\].answer"):
        read_converted(path)


def test_observations_cut_short_are_still_read():
    cut = '{"error": "", "response": "[{\\"id\\":\\"EKVF\\",\\"phone\\":\\"+687 27.25.92\\"},{\\"na'
    answer = make_answer("1", "EKVF's phone is +687 27.25.92.",
                         calls=[{"name": "a_for_t", "arguments": "{}", "response": cut}])
    call = answer.calls[0]
    assert call.ok and call.body.startswith('[{"id":"EKVF"')
    verdict = RulesJudge().check_answer_status(answer, 0)
    assert verdict.label == "Solved" and "+687 27.25.92" in verdict.reason


# ---------------------------------------------------------------------- the rules judge


def rules_lines(answers_dir: Path, seed: int) -> list[str]:
    from tasks.toolbench.tooleval.inputs import load_answers

    answers = load_answers(answers_dir, model="chatgpt_dfs", seed=seed)
    return evaluate_pass(answers, RulesJudge(), metric="sopr", seed=seed).labels


@needs_samples
def test_rules_judge_on_the_sample_trees_is_deterministic_and_explained(tmp_path):
    import shutil

    from tasks.toolbench.formats import find_answer_files, read_answer_file

    first = rules_lines(SAMPLES, seed=0)
    assert first == rules_lines(SAMPLES, seed=0)
    # the same labels wherever the answers lie (an invalid tree's walk was once seeded by its path)
    shutil.copytree(SAMPLES, tmp_path / "elsewhere" / "answer")
    assert rules_lines(tmp_path / "elsewhere" / "answer", seed=0) == first
    # another seed changes only what was left to chance: the walk through an invalid tree
    invalid = {(p.parent.name.split("_")[0], p.name.split("_")[0])
               for p in find_answer_files(SAMPLES) if not read_answer_file(p).valid_data}
    assert len(invalid) == 2

    def valid_only(lines):
        return [line for line in lines if tuple(line.split(" ")[:2]) not in invalid]

    assert valid_only(rules_lines(SAMPLES, seed=7)) == valid_only(first)
    assert len(first) == 15 * 3  # 15 answers x 3 runs, one line each
    label = {}
    for line in first:
        head, reason = line.split(" | ", 1)
        assert reason.strip(), line
        group, qid, _, run, status = head.split(" ")
        label[(group, qid)] = status
        # every Solved / Unsure / Unsolved line says what it saw
        assert re.match(r"(Solved|Unsure|Unsolved)", status)
    assert label[("G1", "10")] == "Solved"        # states the postal code, email and phone it got
    assert label[("G1", "57")] == "Unsure"        # the product found, the news search failed
    assert label[("G1", "59")] == "Unsolved"      # every search came back empty
    assert label[("G1", "69")] == "Unsolved"      # invalid tree: no Finish
    assert label[("G2", "10")] == "Unsolved"      # give_up_and_restart
    assert label[("G3", "3")] == "Unsolved"       # recommends a cocktail the API never returned
    by_reason = {tuple(line.split(" | ")[0].split(" ")[:2]): line.split(" | ", 1)[1] for line in first}
    # the invalid tree's walk (seeded) ends without a Finish or in a give-up: Unsolved either way
    assert any(why in by_reason[("G1", "69")] for why in ("does not end with a Finish call", "gives up")), by_reason
    assert "give_up_and_restart" in by_reason[("G2", "10")]
    assert "'98800'" in by_reason[("G1", "10")] or "98800" in by_reason[("G1", "10")]


@needs_samples
def test_rules_judge_uses_relevant_apis_when_the_query_file_gives_them(tmp_path):
    from tasks.toolbench.formats import read_answer_file
    from tasks.toolbench.tooleval.inputs import load_answers

    raw = read_answer_file(SAMPLES / "G1_answer" / "57_ChatGPT_DFS_woFilter_w2.json")
    (tmp_path / "answer" / "G1_answer").mkdir(parents=True)
    (tmp_path / "answer" / "G1_answer" / "57_ChatGPT_DFS_woFilter_w2.json").write_text(
        (SAMPLES / "G1_answer" / "57_ChatGPT_DFS_woFilter_w2.json").read_text())
    query = {"query": raw.query, "query_id": 57, "api_list": [],
             "relevant APIs": [["SEO API", "Products"]]}
    (tmp_path / "G1_query.json").write_text(json.dumps([query]))
    [answer] = load_answers(tmp_path / "answer", model="m", queries=tmp_path / "G1_query.json")
    assert answer.relevant_apis == ("products_for_seo_api",)
    verdict = RulesJudge().check_answer_status(answer, 0)
    assert verdict.label == "Solved" and "1/1 relevant APIs" in verdict.reason


@needs_samples
def test_cli_prints_the_table_and_one_line_per_label(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tasks.toolbench.tooleval", "sopr", "--answers", str(SAMPLES),
                          "--judge", "rules", "--explain", "--out", str(tmp_path / "out")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| overall |" in out.stdout and out.stdout.count(" run ") >= 45
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "toolbench/sopr/G1/value" in metrics
    replay = subprocess.run([sys.executable, "-m", "tasks.toolbench.tooleval", "sopr", "--answers", str(SAMPLES),
                             "--judge", "replay", "--replay", str(tmp_path / "out" / "verdicts.jsonl")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    table = out.stdout.split("\n\n")[1]
    assert table in replay.stdout


# ---------------------------------------------------------------------- arithmetic, scripted


def test_pass_table_is_toolevals():
    assert PASS_TABLE[("Unsolved", "Solvable")] == "Failed"
    assert PASS_TABLE[("Unsolved", "Unsolvable")] == "Passed"
    assert PASS_TABLE[("Unsure", "Unsolvable")] == "Passed"
    assert PASS_TABLE[("Unsolved", "Unsure")] == PASS_TABLE[("Unsure", "Solvable")] == "Unsure"


def test_sopr_per_run_mean_and_population_std():
    answers = [make_answer(q, "t") for q in ("1", "2", "3", "4")] + [make_answer("5", "t", finished=False)]
    judge = ScriptedJudge({"check_answer_status|2|m|0": "Unsure", "check_answer_status|2|m|1": "Unsure",
                           "check_answer_status|2|m|2": "Unsure", "check_answer_status|3|m|1": "Unsolved",
                           "check_answer_status|4|m|0": "Unsolved", "check_answer_status|4|m|1": "Unsolved",
                           "check_answer_status|4|m|2": "Unsolved"},
                          defaults={"check_answer_status": "Solved", "parse_answer_status": "Unsure"})
    result = sopr(answers, judge, runs=3)["G1"]
    # run 0: 1 + 0.5 + 1 + 0 + 0 = 2.5 / 5; run 1: 1 + 0.5 + 0 = 1.5 / 5; run 2: 2.5 / 5
    assert result.per_run == pytest.approx([0.5, 0.3, 0.5])
    report = evaluate_pass(answers, ScriptedJudge(judge.table, judge.defaults), metric="sopr")
    row = report.rows[0]
    assert row.value == pytest.approx(13 / 30) and row.run_std == pytest.approx(0.0942809, abs=1e-6)
    assert result.counts()["no_finish_or_gave_up"] == 3 and result.counts()["answer_unsure_first_look"] == 3
    assert not any(k.startswith("check_answer_status|5|") for k in judge.asked)  # no Finish: no question
    assert report.metrics()["toolbench/sopr/G1/run_std"] == pytest.approx(9.42809, abs=1e-4)


def test_tooleval_pass_rate_coin_flips_ties_and_the_table():
    answers = [make_answer(q, "t") for q in ("1", "2", "3", "4", "5")]
    table = {}
    for r in range(4):
        table[f"check_answer_status|2|m|{r}"] = "Unsolved"
        table[f"check_task_solvable|2|m|{r}"] = "Unsolvable"   # Unsolved + Unsolvable -> Passed
        table[f"check_answer_status|3|m|{r}"] = "Unsolved"     # + Solvable -> Failed
        table[f"check_answer_status|4|m|{r}"] = "Unsure"        # Unsure, Unsure, task Unsure -> coin
        table[f"check_task_solvable|4|m|{r}"] = "Unsure"
        table[f"check_answer_status|5|m|{r}"] = "Solved" if r % 2 == 0 else "Unsolved"  # 2-2 tie
    judge = ScriptedJudge(table, defaults={"check_answer_status": "Solved", "parse_answer_status": "Unsure",
                                           "check_task_solvable": "Solvable"})
    for seed in (0, 1, 2):
        result = tooleval_pass_rate(answers, judge, evaluations=4, seed=seed)["G1"]
        by_id = {q.query_id: q for q in result.queries}
        assert (by_id["1"].passed_votes, by_id["2"].passed_votes, by_id["3"].passed_votes) == (4, 4, 0)
        flips = [coin(seed, "unsure", "G1", "m", "4", r) for r in range(4)]
        assert by_id["4"].passed_votes == sum(flips)
        assert by_id["5"].tie and by_id["5"].counted_passed
        assert by_id["5"].label_passed == coin(seed, "tie", "G1", "m", "5")
        counts = result.counts()
        assert counts["pass_unsure_coin_flips"] == 4 and counts["pass_unsure_flips_passed"] == sum(flips)
        assert counts["ties"] == 1 + (sum(flips) == 2)
        expected = (3 + (sum(flips) >= 2)) / 5   # 1, 2, 5 (tie counts) pass; 4 if its flips do not lose
        assert result.pass_rate == pytest.approx(expected)
        assert result.per_run == pytest.approx([(2 + flips[r] + (r % 2 == 0)) / 5 for r in range(4)])
    # Solved answers are Solvable without asking; the task is asked only when not Solved
    assert not any(k.startswith("check_task_solvable|1|") for k in judge.asked)
    assert any(k.startswith("parse_answer_status|4|") for k in judge.asked)
    # a different seed changes only the coins
    patterns = {tuple(coin(s, "unsure", "G1", "m", "4", r) for r in range(4)) for s in range(8)}
    assert len(patterns) > 1
    # a give-up is Unsolved without a judge, but its task is judged: Unsolvable -> Passed;
    # no Finish at all fails with no question asked
    gave_up = make_answer("6", "", finished=True)
    gave_up.answer["final_answer"] = '{"return_type": "give_up_and_restart"}'
    judge = ScriptedJudge({"check_task_solvable|6|m|0": "Unsolvable"}, defaults={"check_task_solvable": "Solvable"})
    result = tooleval_pass_rate([gave_up, make_answer("7", "x", finished=False)], judge, evaluations=2)["G1"]
    assert [(q.query_id, q.passed_votes) for q in result.queries] == [("6", 1), ("7", 0)]
    assert judge.asked == ["check_task_solvable|6|m|0", "check_task_solvable|6|m|1"]


def test_win_rate_order_swap_ties_a_judge_that_always_picks_the_first_answer():
    ref = {q: make_answer(q, f"reference {q}", model="ref") for q in ("1", "2", "3", "4")}
    cand = {q: make_answer(q, f"candidate {q}", model="cand") for q in ("1", "2", "3")}
    cand["4"] = make_answer("4", "reference 4", model="cand")  # identical to the reference's
    statuses = {"ref": {"1": "Solved", "2": "Solved", "3": "Unsure", "4": "Unsure"},
                "cand": {"1": "Unsolved", "2": "Solved", "3": "Solved", "4": "Unsure"}}
    table = {}
    for side, answers in (("ref", ref), ("cand", cand)):
        for q, label in statuses[side].items():
            for r in range(3):
                table[f"check_answer_status|{q}|{side}|{r}"] = label
    judge = ScriptedJudge(table, defaults={"parse_answer_status": "Unsure", "select_better_answer": "0"})
    reports = [evaluate_pass(list(a.values()), judge, metric="sopr") for a in (ref, cand)]
    for seed in (0, 3):
        report = evaluate_win(list(ref.values()), list(cand.values()), judge, reference_report=reports[0],
                              candidate_report=reports[1], rounds=2, seed=seed)
        row = report.rows[0]
        # 1: Solved vs Unsolved -> reference, no judge; 2: judge picks answer_0 both rounds:
        # the reference in round 0, the candidate in round 1 -> tie; 3: only the candidate Solved;
        # 4: identical answers -> a coin each round
        coins = [coin(seed, "identical", "G1", "ref", "cand", "4", r) for r in range(2)]
        cand_votes_4 = sum((c if r % 2 else not c) for r, c in enumerate(coins))
        outcome_4 = "win" if cand_votes_4 == 2 else "lose" if cand_votes_4 == 0 else "tie"
        wins = 1 + (outcome_4 == "win")
        assert row.value == pytest.approx(wins / 4)
        assert row.extra["tie_rate"] == pytest.approx((1 + (outcome_4 == "tie")) / 4)
        assert row.counts["by_pass_label"] == 2 and row.counts["by_judge"] == 2
        assert row.counts["judge_picked_first_shown"] == 2 and row.counts["identical_coin_flips"] == 2
    shown = [k for k in judge.asked if k.startswith("select_better_answer|2|")]
    assert shown == ["select_better_answer|2|ref|cand|0", "select_better_answer|2|cand|ref|1"] * 2


def test_win_rate_missing_answers_and_no_choice():
    ref = {"1": make_answer("1", "a", model="ref")}
    cand = {"2": make_answer("2", "b", model="cand")}
    judge = ScriptedJudge(defaults={"check_answer_status": "Solved"})
    reports = [evaluate_pass(list(a.values()), judge, metric="pass_rate") for a in (ref, cand)]
    report = evaluate_win(list(ref.values()), list(cand.values()), judge, reference_report=reports[0],
                          candidate_report=reports[1])
    assert report.rows[0].counts["missing_answer"] == 4
    assert report.rows[0].value == pytest.approx(0.5) and report.rows[0].extra["lose_rate"] == pytest.approx(0.5)
    both = {"1": make_answer("1", "x", model="cand")}
    judge = ScriptedJudge(defaults={"check_answer_status": "Solved", "select_better_answer": None})
    reports = [evaluate_pass(list(a.values()), judge, metric="sopr") for a in (ref, both)]
    report = evaluate_win(list(ref.values()), list(both.values()), judge, reference_report=reports[0],
                          candidate_report=reports[1])
    assert report.rows[0].counts["judge_no_choice"] == 2 and report.rows[0].extra["tie_rate"] == 1.0


def test_replay_reproduces_a_recorded_run_and_refuses_unknown_keys(tmp_path):
    answers = [make_answer(q, "t") for q in ("1", "2", "3")]
    scripted = ScriptedJudge({"check_answer_status|2|m|1": "Unsure", "parse_answer_status|2|m|1": "Unsolved"},
                             defaults={"check_answer_status": "Solved"})
    recorder = RecordingJudge(scripted)
    first = evaluate_pass(answers, recorder, metric="sopr", runs=3)
    path = recorder.write(tmp_path / "verdicts.jsonl")
    replayed = evaluate_pass(answers, ReplayJudge(path), metric="sopr", runs=3)
    assert [r.per_run for r in replayed.rows] == [r.per_run for r in first.rows]
    assert replayed.labels == first.labels
    with pytest.raises(JudgeError, match=r"check_answer_status\|1\|m\|3"):
        evaluate_pass(answers, ReplayJudge(path), metric="sopr", runs=4)


def test_one_answer_per_query():
    with pytest.raises(ValueError, match="two answers for query 1"):
        evaluate_pass([make_answer("1", "a"), make_answer("1", "b")], RulesJudge())
