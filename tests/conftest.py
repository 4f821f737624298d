"""Shared fixtures: composed configs for in-process runs, and one tiny-model cache per session.

The warm start (SFT) is the slowest part of a run; every test uses the default recipe and
seed and one cache folder, so it is built once per test session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.config import compose_config

os.environ.setdefault("WANDB_MODE", "offline")  # tests never talk to W&B's servers
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ["HF_HUB_OFFLINE"] = "1"  # tests read the local fixtures; no connection to any hub is tried
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_cache() -> str:
    """The tiny-model cache for this session (TOOLRL_TEST_CACHE reuses one across sessions)."""
    path = os.environ.get("TOOLRL_TEST_CACHE") or str(Path.home() / ".cache" / "toolrl-test")
    return path


def make_cfg(overrides: list[str]):
    """The composed config of ``python -m orchestrator <overrides>``."""
    return compose_config(overrides)


def make_task(name: str, **spec):
    """The task of conf/task/<name>.yaml (with the experiment file of the tiny model), ``spec``
    keys overridden: what a run builds."""
    from orchestrator.task import build_task

    return build_task(make_cfg([f"task={name}", *(f"task.spec.{k}={_yaml(v)}" for k, v in spec.items())]).task)


def _yaml(value):
    return "null" if value is None else str(value)
