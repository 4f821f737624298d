"""Every `python -m orchestrator ...` command the README documents runs as written
(shortened with small trainer.max_steps; commands that need a GPU, a network or a
cluster are checked for config validity only)."""

from __future__ import annotations

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
CHECKED_ONLY = NEEDS_ELSEWHERE + ("sweep=seeds", "task=gsm8k")


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


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command_config_is_valid(command):
    args = shlex.split(command)[3:]
    assert check_overrides(args, check_environment=not any(f in command for f in NEEDS_ELSEWHERE)) is None


RUNNABLE = [c for c in COMMANDS if not any(flag in c for flag in CHECKED_ONLY) and "--help" not in c]


@pytest.mark.ray
@pytest.mark.parametrize("command", RUNNABLE)
def test_documented_command_runs(command, tmp_path, model_cache):
    args = shlex.split(command)[3:]
    short = ["trainer.max_steps=2", "trainer.eval_every=1", f"cache_dir={model_cache}", "logger=none",
             "model.tiny.seed=0"]  # one warm start for every command (the seed otherwise picks its own)
    if not any(a.startswith("output_dir=") for a in args):
        short.append(f"output_dir={tmp_path}/run")
    if any(a == "trainer.resume=latest" for a in args):
        # needs an earlier run of the same experiment: make one first
        first = subprocess.run([sys.executable, "-m", "orchestrator", *short[:-1], f"output_dir={tmp_path}/first"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        short = [s for s in short if not s.startswith("trainer.max_steps")] + ["trainer.max_steps=3"]
    args = [a for a in args if not a.startswith(("trainer.max_steps=", "output_dir=")) or "resume" in a] + short
    if "trainer.resume=latest" in args:
        args = [a for a in args if not a.startswith("output_dir=")] + [f"output_dir={tmp_path}/second"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "eval/accuracy" in out.stdout
