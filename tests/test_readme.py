"""Every `python -m orchestrator ...` command the README documents runs as written
(shortened with small trainer.max_steps; commands that need a GPU, a network or a
cluster are checked for config validity only)."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from orchestrator.config import check_overrides
from tests.conftest import REPO
from tests.readme_commands import (FIRST, RESUME, TOOLBENCH_SFT, TWO_WORKERS, assert_quiet, documented_commands,
                                   run_here, shortened)

pytestmark = [pytest.mark.slow]

NEEDS_ELSEWHERE = ("trainer.use_gpu=true", "ray.address=auto", "model=gpt2", "model=starcoderbase-1b")
# Sweeps, GSM8K and ToolBench's evaluation run end to end in their own tests (tests/test_sweep.py,
# tests/test_gsm8k.py, tests/test_toolbench_e2e.py: the last needs a checkpoint to evaluate); here
# their configs are checked.
CHECKED_ONLY = NEEDS_ELSEWHERE + ("sweep=seeds", "task=gsm8k", "mode=eval", "experiment=toolllama")
# Commands another test runs as its own run, with the checks of that mechanism.
RUN_ELSEWHERE = {
    TWO_WORKERS: "tests/test_multinode.py (two DDP workers on two nodes, tools on the tool node)",
    TOOLBENCH_SFT: "tests/test_toolbench_e2e.py (its checkpoint reloaded, then evaluated with DFSDT)",
}


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL).group(1)
    lines = [l for l in first_block.splitlines() if l and not l.startswith("#")]
    assert lines[0] == "bash scripts/install.sh && python -m orchestrator task=calculator"
    ci = (REPO / ".ci" / "run").read_text()
    assert lines[1] in ci, "CI must run exactly the README's test command"


COMMANDS = documented_commands()


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


# What the shortening replaces, and the seed: a command that differs from another only in these
# runs the same code (``seed=3 logger=none output_dir=/tmp/run3`` is the first command again; the
# sweeps run other seeds end to end).
SHORT_KEYS = ("trainer.max_steps=", "trainer.eval_every=", "output_dir=", "seed=", "logger=")


def shortened_config(command: str) -> str:
    """The config a command runs here once shortened, without its folder and seed: two commands
    that differ only in what the shortening replaces (``algo=ppo``, the default;
    ``trainer.max_steps=50``) or in the seed run the same thing, and the suite runs it once."""
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
# The first command (a new user's first console, checked line by line, long enough to learn), then
# trainer.resume=latest, which finds it on disk (the newest run of the experiment) and continues
# it. Every command runs in this process on the session's Ray cluster, through the command line's
# own entry, its console captured at the file descriptors (tests/test_config.py and
# tests/test_sweep_faults.py run `python -m orchestrator` as a process of its own).
OWN_TESTS = (FIRST, RESUME, *SFT_PAIR, *RUN_ELSEWHERE)


def test_the_commands_run_elsewhere_are_the_readmes():
    assert set(RUN_ELSEWHERE) <= set(RUNNABLE), set(RUN_ELSEWHERE) - set(RUNNABLE)


def run_id(console: str) -> str:
    """The W&B run id in a run's closing summary table."""
    return re.search(r"run_id\s*│\s*(\S+)", console).group(1)


def metric_rows(output_dir) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.ray
@pytest.mark.parametrize("command", [c for c in RUNNABLE if c not in OWN_TESTS])
def test_documented_command_runs(command, tmp_path, model_cache, capfd):
    _, console = run_here(shortened(command, tmp_path / "run", model_cache), capfd)
    assert "eval/accuracy" in console or "eval/loss" in console
    assert_quiet(console)


LEARN_STEPS = 60


@pytest.mark.ray
def test_the_first_command_learns_the_calculator_then_resume_latest(tmp_path, model_cache, capfd):
    """The README's first command, shortened (60 of its 240 PPO steps, from the suite's 300-step warm
    start): a readable console, and PPO takes held-out accuracy from the warm start's baseline to
    near perfect. Then trainer.resume=latest finds that run (the newest of the experiment) and
    continues its steps and its W&B run."""
    assert FIRST in RUNNABLE and RESUME in RUNNABLE
    first = tmp_path / "exp" / "first"
    _, console = run_here(shortened(FIRST, first, model_cache, steps=LEARN_STEPS, eval_every=20), capfd)
    assert "eval/accuracy" in console
    assert_quiet(console)
    history = metric_rows(first)
    evals = [r for r in history if "eval/accuracy" in r]
    baseline, final = evals[0], evals[-1]
    assert baseline["step"] == 0 and final["step"] == LEARN_STEPS
    assert baseline["eval/accuracy"] <= 0.6, f"warm start already solves the task ({baseline}); RL would have nothing to do"
    # measured from the 300-step warm start: 0.28 -> 0.86 sampled, 0.01 -> 1.00 greedy in 60 steps
    # (from the default 600-step one: 0.27 -> 0.91; 0.93-0.97 in the default 240 steps)
    assert final["eval/accuracy"] >= max(0.8, baseline["eval/accuracy"] + 0.4), (baseline, final)
    assert final["eval/accuracy_greedy"] >= 0.9, final
    # the policy learned to call the tool far more than the warm start did
    assert baseline["eval/tool_used_frac"] < 0.6 < final["eval/tool_used_frac"]

    second = tmp_path / "exp" / "second"
    _, resumed = run_here(shortened(RESUME, second, model_cache, steps=LEARN_STEPS + 1), capfd)
    assert_quiet(resumed)
    assert [r["step"] for r in metric_rows(second) if "env/reward_mean" in r] == [LEARN_STEPS + 1]
    assert run_id(resumed) == run_id(console)


@pytest.mark.ray
def test_the_readme_sft_commands_follow_one_loss_curve(tmp_path, model_cache, capfd):
    """algo=sft in Ray Train workers, as the README runs it on 1 and on 2 workers: the loss is the
    mean over every trained token of the step on all workers, and the workers split each step's
    demonstrations, so 2 workers follow 1."""
    assert len(SFT_PAIR) == 2, SFT_PAIR
    curves = []
    for i, command in enumerate(SFT_PAIR):
        _, console = run_here(shortened(command, tmp_path / f"sft{i}", model_cache, steps=4), capfd)
        assert "eval/loss" in console or "eval/accuracy" in console
        assert_quiet(console)
        curves.append([r["sft/loss"] for r in metric_rows(tmp_path / f"sft{i}") if "sft/loss" in r])
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
