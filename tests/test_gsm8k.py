"""GSM8K task: answer parsing and the reward (tables), programs from annotations (checked in
the sandbox), the few-shot examples, data loading, demonstrations, and one end-to-end run."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import hydra.utils
import pytest

from orchestrator.config import check
from orchestrator.rollout.protocol import parse_call
from orchestrator.rollout.episode import Episode
from orchestrator.models.tokens import build_byte_tokenizer
from orchestrator.task import Problem
from orchestrator.tools.sandbox import run_python
from orchestrator.task import sources
from tasks.gsm8k import (
    FEW_SHOT,
    GSM8KTask,
    annotation_program,
    parse_answer,
    read_jsonl,
    result_reward,
    run_arithmetic,
)
from orchestrator.task import build_task
from tests.conftest import REPO, make_cfg, make_task


def shared_gsm8k() -> Path | None:
    """The GSM8K JSONL folder: $TOOLRL_SHARED_DATA, else ../shared/data beside the repository,
    else /work/shared/data."""
    roots = [os.environ.get("TOOLRL_SHARED_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"]
    for root in roots:
        if root and (Path(root) / "gsm8k" / "train.jsonl").exists() and (Path(root) / "gsm8k" / "test.jsonl").exists():
            return Path(root) / "gsm8k"
    return None


DATA = shared_gsm8k()
needs_data = pytest.mark.skipif(
    DATA is None, reason="GSM8K JSONL not found: set TOOLRL_SHARED_DATA to a folder holding gsm8k/{train,test}.jsonl"
)


@pytest.fixture(scope="module")
def train_rows() -> list:
    if DATA is None:
        pytest.skip("GSM8K JSONL not found (TOOLRL_SHARED_DATA, ../shared/data, /work/shared/data)")
    return read_jsonl(DATA / "train.jsonl")


def local_task(**kwargs) -> GSM8KTask:
    return hub_task(source="local", local_dir=str(DATA), **kwargs)


def hub_task(**kwargs) -> GSM8KTask:
    """The task as a hub model's run builds it (no byte_context), spec keys overridden."""
    return make_task("gsm8k", model="gpt2", **kwargs)


# ---------------------------------------------------------------- answers and reward


@pytest.mark.parametrize(
    "answer_text, value",
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", 72.0),
        ("#### 1,080", 1080.0),
        ("#### 109,200,000", 109200000.0),
        ("#### -7", -7.0),
        ("#### 3.5", 3.5),
        ("#### .5", 0.5),
        ("####  $1,200.50 ", 1200.5),
        ("a #### 3 then #### 4", 4.0),  # the last marker counts
    ],
)
def test_parse_answer(answer_text, value):
    assert parse_answer(answer_text) == value


@pytest.mark.parametrize("answer_text", ["72", "#### ", "#### seventy", "#### 3/4", "#### 1-2"])
def test_parse_answer_refuses(answer_text):
    with pytest.raises(ValueError):
        parse_answer(answer_text)


@pytest.mark.parametrize(
    "text, answer, reward",
    [
        ("Result=72<submit>", 72, 1.0),
        ("<request><PythonInterpreter>print(48+24)<call>\n\nResult=72<submit>", 72, 1.0),
        ("Result = 72.0 <submit>", 72, 1.0),
        ("Result=72.09<submit>", 72, 1.0),  # within 0.1
        ("Result=71.95<submit>", 72, 1.0),
        ("Result=72.2<submit>", 72, 0.0),
        ("Result=73<submit>", 72, 0.0),
        ("Result=-7<submit>", -7, 1.0),
        ("Result=7<submit>", -7, 0.0),
        ("Result=4.5<submit>", 4.5, 1.0),
        ("Result=1,080<submit>", 1080, 1.0),  # thousands separators, as GSM8K writes them
        ("Result=1080<submit>", 1080, 1.0),
        ("Result=1,08<submit>", 108, 0.0),  # not a thousands separator
        ("Result=$72<submit>", 72, 0.0),  # a number only, as the seed's pattern
        ("Result=72", 72, 0.0),  # never submitted
        ("72<submit>", 72, 0.0),
        ("Result=5<submit>Result=72<submit>", 72, 0.0),  # the first answer counts
        ("Result=<submit>", 72, 0.0),
        ("", 72, 0.0),
    ],
)
def test_reward_table(text, answer, reward):
    assert result_reward(text, answer, 0.1) == reward


def _episode(*segments: tuple[str, str]) -> Episode:
    ep = Episode.from_prompt([0], "Q: How many clips?\n\n", {"answer": 72.0})
    for i, (source, text) in enumerate(segments, start=1):
        ep.add(source, [i], text)
    return ep


def test_reward_reads_the_model_text_only():
    task = hub_task()
    call = ("model", "<request><PythonInterpreter>print(72)<call>")
    # the interpreter printed a submitted answer: the model did not write it, so it earns nothing
    assert task.reward(_episode(call, ("tool", "Result=72<submit>\n<response>"))) == 0.0
    assert task.reward(_episode(call, ("tool", "Result=72<submit>\n<response>"), ("model", "\n\nResult=5<submit>"))) == 0.0
    assert task.reward(_episode(call, ("tool", "72\n<response>"), ("model", "\n\nResult=72<submit>"))) == 1.0


# ---------------------------------------------------------------- programs


@pytest.mark.parametrize(
    "program, printed",
    [
        ("a=48/2\nb=48+a\nprint(b)", "72.0\n"),
        ("a=3*2\nb=a*2\nprint(b)", "12\n"),
        ("a=7/2\nprint(a)", "3.5\n"),
        ("a=0.1+0.2\nprint(a)", "0.30000000000000004\n"),  # what Python prints, not a rounded value
        ("a=2**10\nb=a//3\nc=a%3\nprint(-c)", "-1\n"),
        ("x = 3 * 4.50\nprint(x)", "13.5\n"),
    ],
)
def test_run_arithmetic_prints_as_python(program, printed):
    assert run_arithmetic(program) == printed


@pytest.mark.parametrize(
    "program",
    [
        "import os\nprint(1)",
        "a=__import__('os')\nprint(a)",
        "a=1\nprint(b)",  # unknown name
        "a=1/0\nprint(a)",
        "a=2**100000\nprint(a)",
        "a=(-8)**0.5\nprint(a)",  # complex
        "a=1e308*10\nprint(a)",
        "a=1\nprint(a, a)",
        "a=1\nb=print(a)",
        "a=[1]\nprint(a)",
        "a=1",  # prints nothing
        "",
        "a=1\nprint(a",
    ],
)
def test_run_arithmetic_refuses(program):
    assert run_arithmetic(program) is None


@pytest.mark.parametrize(
    "solution, program, printed",
    [
        (  # a repeated result becomes its variable
            "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
            "a=48/2\nb=48+a\nprint(b)",
            "72.0\n",
        ),
        (  # the latest variable with that value; commas and spaces dropped; literals made valid
            "<<1,000 - 400=600>> <<05 * 2=10>> <<10+.5=10.5>> <<600 + 10.5=610.5>>\n#### 610.5",
            "a=1000-400\nb=5*2\nc=b+0.5\nd=a+c\nprint(d)",
            "610.5\n",
        ),
        (  # a rounded annotation: linked, the answer moves by 1, so the literal numbers are used
            "<<2/3=0.67>> <<0.67*300=201>>\n#### 201",
            "a=2/3\nb=0.67*300\nprint(b)",
            "201.0\n",
        ),
        (  # steps after the one that gives the answer are dropped
            "<<3*4=12>> <<12+1=13>>\n#### 12",
            "a=3*4\nprint(a)",
            "12\n",
        ),
        ("<<5-12=-7>>\n#### -7", "a=5-12\nprint(a)", "-7\n"),
    ],
)
def test_annotation_program(solution, program, printed):
    assert annotation_program(solution) == (program, printed)


@pytest.mark.parametrize(
    "solution",
    [
        "She has 4+6=10 digits.\n#### 10",  # no annotation
        "<<5x3=15>>\n#### 15",  # not Python arithmetic
        "<<5*3=15>>\n#### 16",  # the chain never reaches the answer
        "<<5*3=fifteen>>\n#### 15",
    ],
)
def test_annotation_program_gives_none(solution):
    assert annotation_program(solution) is None


def test_annotation_programs_run_in_the_sandbox(train_rows):
    """The first 50 training problems with a program: the sandbox prints what we computed,
    and that is the GSM8K answer."""
    checked = 0
    for problem in train_rows:
        made = annotation_program(problem.meta["solution"])
        if made is None:
            continue
        program, printed = made
        result = run_python(program, timeout_s=5.0)
        assert result.ok, (program, result)
        assert result.stdout == printed, program
        assert abs(float(result.stdout) - problem.answer) < 0.1, (program, problem.answer)
        checked += 1
        if checked == 50:
            break
    assert checked == 50


def test_most_training_answers_give_a_program(train_rows):
    made = sum(annotation_program(p.meta["solution"]) is not None for p in train_rows)
    assert made / len(train_rows) > 0.9, made


# ---------------------------------------------------------------- prompt


def few_shot_examples(tool: str = "PythonInterpreter") -> list[tuple[str, str, str, str]]:
    """(question, program, printed, result) of each worked example in FEW_SHOT."""
    text = FEW_SHOT.format(tool=tool)
    pattern = re.compile(
        r"Q: (.*?)\n\n<request><" + tool + r">(.*?)<call>(.*?)<response>\n\nResult=(.*?)<submit>\n\n", re.DOTALL
    )
    examples = pattern.findall(text)
    assert "".join(m.group(0) for m in pattern.finditer(text)) == text, "FEW_SHOT has text outside its examples"
    return examples


def test_few_shot_programs_print_what_the_text_claims():
    examples = few_shot_examples()
    assert len(examples) == 2
    for question, program, printed, result in examples:
        call = parse_call(f"<request><PythonInterpreter>{program}<call>")
        assert call is not None and call.tool == "PythonInterpreter"
        run = run_python(call.query, timeout_s=5.0)
        assert run.ok, run
        assert run.stdout == printed, (question, run.stdout, printed)
        assert float(result) == float(printed)
        assert result_reward(f"Result={result}<submit>", float(printed), 0.1) == 1.0


def test_few_shot_answers_are_right():
    """Worked by hand: 36 - 24 - 5 = 7; 20 - (3 * 4.50 + 2) = 4.5."""
    assert [float(r) for *_, r in few_shot_examples()] == [7.0, 4.5]


def test_prompt_shapes():
    task = hub_task(tool_name="Py")
    problem = Problem(question="How many?", answer=3.0)
    assert task.prompt(problem, few_shot=False) == "Q: How many?\n\n"
    with_shots = task.prompt(problem, few_shot=True)
    assert with_shots.endswith("Result=4.5<submit>\n\nQ: How many?\n\n")
    assert "<request><Py>" in with_shots and "{tool}" not in with_shots


# ---------------------------------------------------------------- data


@needs_data
def test_shared_jsonl_loads():
    task = local_task(num_eval=None)
    train, test = task.split("train"), task.split("test")
    assert (len(train), len(test)) == (7473, 1319)
    assert train[0].answer == 72.0 and train[0].question.startswith("Natalia sold clips")
    assert all(isinstance(p.answer, float) for p in train + test)
    assert not {p.question for p in test} & {p.question for p in train}
    assert task.eval_problems() == test


@needs_data
def test_eval_set_is_fixed_and_sized():
    a, b = local_task(num_eval=16), local_task(num_eval=16)
    assert [p.question for p in a.eval_problems()] == [p.question for p in b.eval_problems()]
    assert len(a.eval_problems()) == 16
    assert local_task(num_eval=16, eval_seed=1).eval_problems() != a.eval_problems()


@needs_data
def test_train_stream_follows_the_seed():
    task = local_task()
    first = [p.question for p, _ in zip(task.train_problems(0), range(20))]
    assert first == [p.question for p, _ in zip(task.train_problems(0), range(20))]
    assert first != [p.question for p, _ in zip(task.train_problems(1), range(20))]
    # one pass covers the split before any problem repeats
    n = len(task.split("train"))
    assert len({p.question for p, _ in zip(task.train_problems(0), range(n))}) == len({p.question for p in task.split("train")})


@needs_data
def test_byte_level_models_get_short_prompts_only():
    task = local_task(byte_context=512, max_prompt_bytes=128)
    for split in ("train", "test"):
        kept = task.split(split)
        assert 0 < len(kept) < len(local_task().split(split))
        assert all(len(task.prompt(p, few_shot=False).encode()) <= 128 for p in kept)
    assert any("max_prompt_bytes" in p for p in hub_task(byte_context=128, max_prompt_bytes=128).problems())


def test_bad_lines_name_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl:3"):
        read_jsonl(path)
    path.write_text(json.dumps({"question": "q", "answer": "no number"}) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl:1"):
        read_jsonl(path)


def test_missing_local_files_say_where(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    with pytest.raises(FileNotFoundError, match="did not answer"):
        hub_task(source="auto", local_dir=str(tmp_path)).split("train")


def _fake_hub(calls: list):
    def load_dataset(name, config, split):
        calls.append((name, config, split))
        return [{"question": f"{split} question?", "answer": "<<2*3=6>>\n#### 6"}]
    return load_dataset


def test_hub_source_uses_datasets(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls: list = []
    monkeypatch.setattr(datasets, "load_dataset", _fake_hub(calls))
    task = hub_task(source="hub")
    assert [p.question for p in task.eval_problems()] == ["test question?"]
    assert calls == [("openai/gsm8k", "main", "test")]


@needs_data
def test_auto_takes_the_hub_when_it_answers_else_the_files(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls: list = []
    monkeypatch.setattr(datasets, "load_dataset", _fake_hub(calls))
    monkeypatch.setattr(sources, "hub_reachable", lambda: True)
    assert len(hub_task(source="auto", local_dir=str(DATA)).split("train")) == 1
    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    assert len(hub_task(source="auto", local_dir=str(DATA)).split("train")) == 7473
    assert len(calls) == 1


# ---------------------------------------------------------------- tools and config


def test_tool_config_builds_the_interpreter():
    (tool_cfg,) = hub_task(tool_timeout_s=1.5).tools()
    tool = hydra.utils.instantiate(tool_cfg)
    assert tool.name == "PythonInterpreter" and tool.timeout_s == 1.5


def test_config_composes_for_tiny_and_hub_models():
    cfg = make_cfg(["task=gsm8k"])
    check(cfg)
    assert cfg.task.env.max_turns == 2
    # conf/experiment/gsm8k_tiny.yaml: one token per byte over the task's whole episode
    assert cfg.task.spec.byte_context == cfg.task.env.max_length and cfg.model.tiny.n_positions is None
    task = build_task(cfg.task)
    assert isinstance(task, GSM8KTask) and task.spec.tolerance == 0.1
    hub = make_cfg(["task=gsm8k", "model=gpt2"])
    check(hub)
    assert hub.task.spec.byte_context is None  # hub models keep every problem


# ---------------------------------------------------------------- demonstrations


@needs_data
@pytest.mark.parametrize("tool_frac, practice_frac", [(0.9, 0.0), (0.3, 1.0)])
def test_demonstrations(tool_frac, practice_frac):
    task = local_task(byte_context=512, demo_tool_frac=tool_frac, demo_practice_frac=practice_frac)
    demos = task.demonstrations(400, random.Random(0))
    assert len(demos) == 400 + int(practice_frac * 400)
    tokenizer = build_byte_tokenizer(extra_tokens=["<PythonInterpreter>"])
    with_tool = 0
    for demo in demos:
        text = "".join(t for _, t in demo)
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1 <= 512  # + eos
        assert task.num_tokens(text) == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        sources = [s for s, _ in demo]
        if "tool" not in sources:
            assert sources == ["prompt", "model"] and re.fullmatch(r"Result=-?[\d.]+<submit>", demo[1][1])
            continue
        with_tool += 1
        assert sources == ["prompt", "model", "tool", "model"]
        call = parse_call(demo[0][1] + demo[1][1])  # practice demos: the opener ends the prompt
        assert call is not None and call.tool == "PythonInterpreter"
        printed = demo[2][1].removesuffix("<response>")
        assert run_arithmetic(call.query) == printed  # the tool text is what the program prints
        assert demo[3][1] == f"\n\nResult={printed.strip()}<submit>"
    decision_tool = (with_tool - int(practice_frac * 400)) / 400
    assert abs(decision_tool - tool_frac) < 0.1


# ---------------------------------------------------------------- end to end


# A pipeline check: a short warm start that teaches the protocol (not GSM8K), two PPO steps.
E2E_OVERRIDES = [
    "task=gsm8k",
    "logger=none",
    "trainer.max_steps=2",
    "trainer.batch_size=8",
    "algo.minibatch_size=4",
    "task.spec.source=local",
    "task.spec.num_eval=16",
    "task.env.max_new_tokens=64",
    "model.tiny.sft_demos=1000",
    "model.tiny.sft_steps=60",
    "model.tiny.sft_batch_size=16",
    "model.tiny.sft_lr=4e-3",
    "model.tiny.sft_warmup_steps=5",
]


@pytest.mark.slow
@pytest.mark.ray
@needs_data
def test_gsm8k_end_to_end(tmp_path, model_cache, local_ray):
    """Warm start, eval, two PPO steps, eval: programs run in the sandbox through the Ray tool pool."""
    from orchestrator.launch.experiment import run

    out = tmp_path / "gsm8k"
    cfg = make_cfg([*E2E_OVERRIDES, f"cache_dir={model_cache}", f"output_dir={out}", f"task.spec.local_dir={DATA}"])
    metrics = run(cfg)
    assert metrics["step"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r["step"] for r in rows if "eval/accuracy" in r]
    assert evals[0] == 0 and evals[-1] == 2, evals
    assert [r["step"] for r in rows if "env/reward_mean" in r] == [1, 2]
    # the interpreter answered: calls whose result was not an error (malformed calls are errors)
    train = [r for r in rows if "tools/calls_per_episode" in r]
    assert any(r["tools/calls_per_episode"] > 0 and r["tools/error_frac"] < 1.0 for r in train), train
    assert sorted(p.name for p in (out / "episodes").glob("step_*.html")) == ["step_000000.html", "step_000002.html"]
    print({k: round(v, 3) for k, v in metrics.items() if k.startswith(("time/", "eval/", "tools/", "env/reward"))})


@needs_data
def test_fingerprint_follows_the_demos_not_the_paths(tmp_path):
    copy = tmp_path / "gsm8k"
    copy.mkdir()
    for name in ("train.jsonl", "test.jsonl"):
        (copy / name).write_bytes((DATA / name).read_bytes())
    base = local_task(byte_context=512).fingerprint()
    assert hub_task(source="local", local_dir=str(copy), byte_context=512, num_eval=5).fingerprint() == base
    assert local_task(byte_context=512, demo_tool_frac=0.5).fingerprint() != base
    (copy / "train.jsonl").write_text((DATA / "train.jsonl").read_text().replace("Natalia", "Natalie", 1))
    assert hub_task(source="local", local_dir=str(copy)).fingerprint() != local_task().fingerprint()
