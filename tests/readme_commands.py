"""The README's `python -m orchestrator ...` commands, as the tests run them: read from the README,
shortened to a few steps and a little data, and run through the command line's own entry.

Shared by tests/test_readme.py and the tests that carry a README command as their own run (the
two-worker command on two nodes in tests/test_multinode.py, ToolBench's SFT command in
tests/test_toolbench_e2e.py): one run checks both what the README promises and the mechanism.
"""

from __future__ import annotations

import re
import shlex

from tests.conftest import REPO, WARM_START

FIRST = "python -m orchestrator task=calculator"
RESUME = "python -m orchestrator task=calculator trainer.resume=latest"
TWO_WORKERS = "python -m orchestrator task=calculator trainer.num_workers=2"
TOOLBENCH_SFT = "python -m orchestrator task=toolbench algo=sft"
TOOLBENCH_SHORT = ("num_train=400", "num_heldout=20", "eval_cases=8")

# What a run's console must not show (issue: a first run buried its progress under these).
NOISE = ("Failed to query Ray Train Controller", "TrainingReport(", "FutureWarning", "DeprecationWarning",
         "{'loss':", "{'train_runtime'", "Reporting training result", "(RayTrainWorker", "(TrainController",
         "(PlacementGroupCleaner", "Writing model shards", "Loading weights", "(raylet)")


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


def shortened(command: str, output_dir, model_cache: str, steps: int = 2, eval_every: int = 0) -> list[str]:
    """The command's overrides, shortened to a few steps, the suite's warm start (conftest.WARM_START)
    and, for ToolBench and SFT, a little data.

    ``eval_every=0`` evaluates at the start and the end only: the console and metrics show an
    evaluation either way, and each one costs a full pass over the held-out set."""
    args = shlex.split(command)[3:]
    short = [f"trainer.max_steps={steps}", f"trainer.eval_every={eval_every}", f"cache_dir={model_cache}",
             "logger=none", *WARM_START]  # one warm start for every command (the seed otherwise picks its own)
    if "task=toolbench" in args:  # the data shortened as the steps are (20,000 trajectories take a minute)
        short += [f"task.spec.{key}" for key in TOOLBENCH_SHORT]
        short.append("model.tiny.copy_steps=3")  # the copy pretraining's path, not its minutes
    elif "algo=sft" in args:  # a few steps need a few demonstrations, not all 60,000 of the task
        short.append("algo.num_demos=2000")
    kept = [a for a in args if not a.startswith(("trainer.max_steps=", "output_dir=")) or "resume" in a]
    return kept + short + [f"output_dir={output_dir}"]


def assert_quiet(console: str) -> None:
    noise = [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert not noise, "library noise on the console (it belongs in <output_dir>/logs/):\n" + "\n".join(noise[:10])


def run_here(args: list[str], capfd=None) -> tuple[dict, str]:
    """The command run in this process on the session's Ray cluster (or the one a test started),
    through the command line's own entry (compose, check, run, summary); its console captured at
    the file descriptors when ``capfd`` is given."""
    import ray

    from orchestrator.config import check_overrides, compose_config
    from orchestrator.launch.cli import run_config
    from tests.conftest import ensure_local_ray

    assert check_overrides(args) is None
    if not ray.is_initialized():
        ensure_local_ray()
    if capfd is not None:
        capfd.readouterr()
    metrics = run_config(compose_config(args))
    if capfd is None:
        return metrics, ""
    out, err = capfd.readouterr()
    return metrics, out + err
