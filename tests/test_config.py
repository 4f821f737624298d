"""Every config group option composes and validates; bad input gets one clear message."""

import subprocess
import sys
from pathlib import Path

import hydra.utils
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from orchestrator.cli import CONF_DIR, check_overrides
from orchestrator.config import ConfigError, validate

GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF_DIR.iterdir() if g.is_dir()}
OPTIONS = [(g, o) for g, opts in GROUPS.items() for o in opts]


def composed(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("group, option", OPTIONS)
def test_every_group_option_composes(group, option):
    cfg = composed([f"{group}={option}"])
    if group == "task":
        task = hydra.utils.instantiate(cfg.task.spec)
        assert task.tools() and task.eval_problems()
    validate(cfg) if group != "model" or option == "tiny" else None


@pytest.mark.parametrize(
    "overrides",
    [
        ["task=calculator", "model=tiny", "algo=ppo", "trainer.num_workers=2", "trainer.use_gpu=false",
         "trainer.max_steps=5", "trainer.eval_every=2", "seed=3", "logger=none", "output_dir=/tmp/x"],
        ["logger=wandb", "ray.address=auto", "trainer.lean_decoder=false"],
        ["ray.address=127.0.0.1:6379"],
    ],
)
def test_documented_overrides_are_accepted(overrides):
    assert check_overrides(overrides) is None


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["task=nope"], "Available options in 'task': calculator"),
        (["trainer.num_worker=2"], "unknown key 'trainer.num_worker' in trainer. Did you mean trainer.num_workers?"),
        (["nonsense=1"], "unknown key"),
        (["trainer.num_workers=abc"], "trainer.num_workers: expected an integer, got 'abc'"),
        (["trainer.num_workers=0"], "trainer.num_workers: must be >= 1"),
        (["trainer.use_gpu=maybe"], "trainer.use_gpu: expected true or false"),
        (["trainer.lean_decoder=fast"], "trainer.lean_decoder: expected true or false"),
        (["logger.mode=loud"], "logger.mode: got 'loud' (valid: auto, online, offline, disabled)"),
        (["trainer.batch_size=63", "trainer.num_workers=2"], "does not split evenly"),
        (["model.tiny.n_positions=64"], "exceeds model.tiny.n_positions"),
    ],
)
def test_bad_input_names_the_key(overrides, expected):
    message = check_overrides(overrides)
    assert message is not None and expected in message


def test_gpu_request_without_gpu_is_explained():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="trainer.use_gpu"):
        validate(composed(["trainer.use_gpu=true"]))


def test_help_lists_groups_and_options():
    out = subprocess.run([sys.executable, "-m", "orchestrator", "--help"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0
    for group, options in GROUPS.items():
        assert f"{group}: " in out.stdout and all(o in out.stdout for o in options)


def test_cli_error_is_one_message_not_a_traceback():
    out = subprocess.run([sys.executable, "-m", "orchestrator", "trainer.max_step=3"], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parent.parent)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "trainer.max_steps" in out.stderr
