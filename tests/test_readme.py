"""Every `python -m orchestrator ...` command the README documents runs as written
(shortened with small trainer.max_steps; commands that need a GPU, a network or a
cluster are checked for config validity only)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from orchestrator.config import check_overrides
from tests.conftest import REPO

pytestmark = [pytest.mark.slow]

NEEDS_ELSEWHERE = ("trainer.use_gpu=true", "ray.address=auto", "model=gpt2", "model=starcoderbase-1b")
# Sweeps and GSM8K run end to end in tests/test_sweep.py and tests/test_gsm8k.py (the same
# settings); here their configs are checked.
# Sweeps, GSM8K and ToolBench's evaluation run end to end in their own tests (tests/test_sweep.py,
# tests/test_gsm8k.py, tests/test_toolbench_e2e.py: the last needs a checkpoint to evaluate).
CHECKED_ONLY = NEEDS_ELSEWHERE + ("sweep=seeds", "task=gsm8k", "mode=eval", "experiment=toolllama")


def documented_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.search(r"python -m orchestrator( |$)", line)
            if match:
                commands.append(line[match.start():])
    return commands


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL).group(1)
    lines = [l for l in first_block.splitlines() if l and not l.startswith("#")]
    assert lines[0] == "bash scripts/install.sh && python -m orchestrator task=calculator"
    ci = (REPO / ".ci" / "run").read_text()
    assert lines[1] in ci, "CI must run exactly the README's test command"


COMMANDS = documented_commands()

# What a run's console must not show (issue: a first run buried its progress under these).
NOISE = ("Failed to query Ray Train Controller", "TrainingReport(", "FutureWarning", "DeprecationWarning",
         "{'loss':", "{'train_runtime'", "Reporting training result", "(RayTrainWorker", "(TrainController",
         "(PlacementGroupCleaner", "Writing model shards", "Loading weights")


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command_config_is_valid(command):
    """Checked as a user's command is: a GPU run on an embedded cluster of a machine without CUDA is
    refused with its one line; a run joining a cluster is checked against the cluster once connected."""
    import torch

    args = shlex.split(command)[3:]
    message = check_overrides(args)
    here_without_gpu = "trainer.use_gpu=true" in command and "ray.address" not in command and not torch.cuda.is_available()
    names_a_users_file = "task.spec.source=/data/" in command  # the user's copy of ToolBench's data
    if here_without_gpu:
        assert message is not None and "trainer.use_gpu" in message and "ray.address=auto" in message, message
    elif names_a_users_file:  # refused here, before Ray starts, with the key and the path
        assert message is not None and "task.spec.source" in message and "does not exist" in message, message
    else:
        assert message is None, message


SHORT_KEYS = ("trainer.max_steps=", "trainer.eval_every=", "output_dir=")


def shortened_config(command: str) -> str:
    """The config a command runs here once shortened, without its folder: two commands that
    differ only in what the shortening replaces (``algo=ppo``, the default; ``trainer.max_steps=50``)
    run the same thing, and the suite runs it once."""
    from omegaconf import OmegaConf

    from orchestrator.config.compose import compose_config

    args = [a for a in shlex.split(command)[3:] if not a.startswith(SHORT_KEYS)]
    cfg = compose_config([*args, "trainer.max_steps=2", "trainer.eval_every=1", "logger=none", "model.tiny.seed=0"])
    cfg.output_dir = "-"
    return OmegaConf.to_yaml(cfg)


def distinct_runs(commands: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for command in commands:
        key = command if "trainer.resume=" in command else shortened_config(command)
        if key not in seen:
            seen.add(key)
            out.append(command)
    return out


RUNNABLE = distinct_runs([c for c in COMMANDS if not any(flag in c for flag in CHECKED_ONLY) and "--help" not in c])
# The two SFT commands run together, in test_the_readme_sft_commands_follow_one_loss_curve.
SFT_PAIR = [c for c in RUNNABLE if re.fullmatch(r"python -m orchestrator task=calculator algo=sft( trainer.num_workers=2)?", c)]
FIRST = "python -m orchestrator task=calculator"
RESUME = "python -m orchestrator task=calculator trainer.resume=latest"
# The first command (a new user's first console, checked line by line) and trainer.resume=latest
# (the newest run, found from a fresh process) run as a user runs them, each in a process of its
# own with a Ray of its own; the second continues the first. The others run in this process on the
# session's Ray cluster, through the command line's own entry (compose, check, run, summary), their
# console captured at the file descriptors.
OWN_PROCESS = (FIRST, RESUME)
TOOLBENCH_SHORT = ("num_train=400", "num_heldout=20", "eval_cases=8")


def run_id(console: str) -> str:
    """The W&B run id in a run's closing summary table."""
    return re.search(r"run_id\s*│\s*(\S+)", console).group(1)


def shortened(command: str, tmp_path, model_cache: str, steps: int = 2) -> list[str]:
    """The command's overrides, shortened to a few steps (and, for ToolBench and SFT, a little data)."""
    args = shlex.split(command)[3:]
    short = [f"trainer.max_steps={steps}", "trainer.eval_every=1", f"cache_dir={model_cache}", "logger=none",
             "model.tiny.seed=0"]  # one warm start for every command (the seed otherwise picks its own)
    if "task=toolbench" in args:  # the data shortened as the steps are (20,000 trajectories take a minute)
        short += [f"task.spec.{key}" for key in TOOLBENCH_SHORT]
    elif "algo=sft" in args:  # a few steps need a few demonstrations, not all 60,000 of the task
        short.append("algo.num_demos=2000")
    args = [a for a in args if not a.startswith(("trainer.max_steps=", "output_dir=")) or "resume" in a] + short
    if not any(a.startswith("output_dir=") for a in shlex.split(command)):
        args.append(f"output_dir={tmp_path}/run")
    else:
        args += [a for a in shlex.split(command) if a.startswith("output_dir=")]
    return args


def elsewhere(args: list[str], output_dir) -> list[str]:
    return [a for a in args if not a.startswith("output_dir=")] + [f"output_dir={output_dir}"]


def run_in_own_process(args: list[str]) -> str:
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def run_here(args: list[str], capfd) -> tuple[dict, str]:
    from orchestrator.config import compose_config
    from orchestrator.launch.cli import run_config
    from tests.conftest import ensure_local_ray

    assert check_overrides(args) is None
    ensure_local_ray()
    capfd.readouterr()
    metrics = run_config(compose_config(args))
    out, err = capfd.readouterr()
    return metrics, out + err


def assert_quiet(console: str) -> None:
    noise = [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert not noise, "library noise on the console (it belongs in <output_dir>/logs/):\n" + "\n".join(noise[:10])


@pytest.mark.ray
@pytest.mark.parametrize("command", [c for c in RUNNABLE if c not in SFT_PAIR and c not in OWN_PROCESS])
def test_documented_command_runs(command, tmp_path, model_cache, capfd):
    _, console = run_here(shortened(command, tmp_path, model_cache), capfd)
    assert "eval/accuracy" in console or "eval/loss" in console
    assert_quiet(console)


@pytest.mark.ray
def test_the_first_command_then_resume_latest(tmp_path, model_cache):
    """The README's first command, then trainer.resume=latest from a new process: it finds that run
    (the newest of the experiment) and continues its steps and its W&B run."""
    assert FIRST in RUNNABLE and RESUME in RUNNABLE
    console = run_in_own_process(elsewhere(shortened(FIRST, tmp_path, model_cache), tmp_path / "exp" / "first"))
    assert "eval/accuracy" in console
    assert_quiet(console)
    resumed = run_in_own_process(elsewhere(shortened(RESUME, tmp_path, model_cache, steps=3), tmp_path / "exp" / "second"))
    assert_quiet(resumed)
    rows = [json.loads(line) for line in (tmp_path / "exp" / "second" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "env/reward_mean" in r] == [3]
    assert run_id(resumed) == run_id(console)


@pytest.mark.ray
def test_the_readme_sft_commands_follow_one_loss_curve(tmp_path, model_cache, capfd):
    """algo=sft in Ray Train workers, as the README runs it on 1 and on 2 workers: the loss is the
    mean over every trained token of the step on all workers, and the workers split each step's
    demonstrations, so 2 workers follow 1."""
    assert len(SFT_PAIR) == 2, SFT_PAIR
    curves = []
    for i, command in enumerate(SFT_PAIR):
        args = elsewhere(shortened(command, tmp_path, model_cache, steps=4), tmp_path / f"sft{i}")
        _, console = run_here(args, capfd)
        assert "eval/loss" in console or "eval/accuracy" in console
        assert_quiet(console)
        rows = [json.loads(line) for line in (tmp_path / f"sft{i}" / "metrics.jsonl").read_text().splitlines()]
        curves.append([r["sft/loss"] for r in rows if "sft/loss" in r])
    one, two = curves
    assert len(one) == 4 and one[-1] < one[0]
    assert two == pytest.approx(one, rel=1e-4)


# ---------------------------------------------------------------- the "adding" section's examples


def adding_section_code() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Adding a task or an algorithm"):]
    section = section[: section.index("\n## ", 3)]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_readme_task_example_runs_an_episode_with_its_tool():
    """The worked task: its demonstrations tokenize, its tool answers through the environment, and
    its reward reads the model's own text."""
    from orchestrator.config.schema import EnvConfig
    from orchestrator.models.tokens import build_byte_tokenizer
    from orchestrator.rollout.demonstration import to_episodes
    from orchestrator.rollout.environment import TextEnvironment
    from orchestrator.task import problem_meta
    from orchestrator.tools.local import LocalRouter
    from tests.scripted import ScriptedLM

    task_code = adding_section_code()[0]
    namespace: dict = {}
    exec(compile(task_code, "README:wordlen", "exec"), namespace)
    spec = namespace["WordLenSpec"](tool_name="Len", num_eval=4, demo_tool_frac=0.3)
    task = namespace["WordLenTask"](spec, name="wordlen")
    tok = build_byte_tokenizer(extra_tokens=["<Len>"])
    demos = task.demonstrations(200, __import__("random").Random(0))
    assert len(to_episodes(tok, demos, 96)) == 400
    problem = task.eval_problems()[0]
    prompt = task.prompt(problem, few_shot=False)
    word = problem.meta["word"]
    model = ScriptedLM(tok, {prompt: [f"<request><Len>{word}<call>", f"\n\nResult={len(word)}<submit>"]})
    router = LocalRouter([namespace["LenTool"]("Len")])
    env = TextEnvironment(tok, router, task.reward, EnvConfig(max_turns=2, max_new_tokens=40, max_tool_response=50,
                                                              max_length=200), lean_decoder=False)
    [episode] = env.rollout(model, [prompt], [problem_meta(problem)])
    assert episode.segments[2].source == "tool" and episode.segments[2].text.startswith(str(len(word)))
    assert episode.reward == 1.0 and episode.end_reason == "submitted"


def test_the_readme_algorithm_example_learns_from_a_reward():
    """The worked algorithm: one update makes the rewarded episode likelier than the other."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from orchestrator.algos.batch import logprobs_of
    from orchestrator.rollout.episode import Episode
    from tests.conftest import make_setup

    algo_code = adding_section_code()[1]
    namespace: dict = {}
    exec("from dataclasses import dataclass\nimport torch\nfrom orchestrator.config.fields import value\n"
         "from orchestrator.algos.base import Algorithm\n"
         "from orchestrator.algos.batch import collate, lm_forward, logprobs_of, masked_mean\n" + algo_code, namespace)
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=20, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=32))
    algo = namespace["Reinforce"](namespace["ReinforceConfig"](name="reinforce", lr=1e-2), make_setup(lm))
    episodes = []
    for tokens, reward in (([5, 6, 7], 1.0), ([8, 9, 10], 0.0)):
        ep = Episode.from_prompt([1, 2], "p")
        ep.add("model", tokens, "m")
        ep.reward = reward
        episodes.append(ep)
    experience = algo.prepare(episodes)
    batch = experience[0]
    before = (logprobs_of(lm(batch.input_ids).logits, batch.input_ids) * batch.action_mask).sum(1).detach()
    algo.update(experience, 0)
    after = (logprobs_of(lm(batch.input_ids).logits, batch.input_ids) * batch.action_mask).sum(1).detach()
    assert after[0] > before[0] and after[1] < before[1]
