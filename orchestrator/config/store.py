"""Registering every schema in Hydra's ConfigStore, so composing a config type-checks it.

Each option's YAML starts with ``defaults: [/schema/<group>/<option>@_here_, _self_]`` (or
``/schema/<group>@_here_`` for groups with one schema): its values are merged onto the
schema's keys and types, and a key the schema lacks is an error at compose time.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from orchestrator.config.schema import (
    LoggerConfig,
    ModelConfig,
    RunConfig,
    SweepConfig,
    TaskConfig,
    TrainerConfig,
)

_registered = False


def register_configs() -> None:
    """Idempotent; call before composing (the CLI, tests and sweeps do)."""
    global _registered
    if _registered:
        return
    from orchestrator.algos import ALGORITHMS
    from orchestrator.task import task_classes
    from orchestrator.task.registry import group_schemas

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    for group, schema in (("trainer", TrainerConfig), ("logger", LoggerConfig), ("sweep", SweepConfig),
                          ("model", ModelConfig)):
        cs.store(group="schema", name=group, node=schema)
    for name, algorithm in ALGORITHMS.items():
        cs.store(group="schema/algo", name=name, node=algorithm.Config)
    for name, task in task_classes().items():
        cs.store(group="schema/task", name=name, node=TaskConfig(name=MISSING, env=MISSING, tools=MISSING, spec=task.Spec))
    for group, options in group_schemas().items():
        for name, schema in options.items():
            cs.store(group=f"schema/{group}", name=name, node=schema)
    _registered = True
