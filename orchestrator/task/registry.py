"""Finding tasks by name without naming them here.

Task packages (``tasks`` by default; more with ``TOOLRL_TASK_PACKAGES=pkg1,pkg2``) export
``TASKS: dict[str, type[Task]]``. Adding a task touches its own files and one line of that
registry.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from orchestrator.task.base import Task

TASK_PACKAGES_VAR = "TOOLRL_TASK_PACKAGES"


def task_classes() -> dict[str, type[Task]]:
    packages = ["tasks", *[p for p in os.environ.get(TASK_PACKAGES_VAR, "").split(",") if p.strip()]]
    found: dict[str, type[Task]] = {}
    for package in packages:
        module = importlib.import_module(package.strip())
        found.update(getattr(module, "TASKS", {}))
    return found


def group_schemas() -> dict[str, dict[str, type]]:
    """Config groups the task packages bring (``GROUP_SCHEMAS``: group -> option -> schema)."""
    packages = ["tasks", *[p for p in os.environ.get(TASK_PACKAGES_VAR, "").split(",") if p.strip()]]
    found: dict[str, dict[str, type]] = {}
    for package in packages:
        for group, options in getattr(importlib.import_module(package.strip()), "GROUP_SCHEMAS", {}).items():
            found.setdefault(group, {}).update(options)
    return found


def build_task(task_cfg: Any) -> Task:
    """The task of a composed (or typed) ``task`` config group."""
    from omegaconf import DictConfig, OmegaConf

    classes = task_classes()
    if task_cfg.name not in classes:
        raise ValueError(f"task.name: no task {task_cfg.name!r} (registered: {', '.join(sorted(classes))})")
    spec = OmegaConf.to_object(task_cfg.spec) if isinstance(task_cfg.spec, DictConfig) else task_cfg.spec
    return classes[task_cfg.name](spec, name=task_cfg.name)
