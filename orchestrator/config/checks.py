"""Every check a config gets before Ray starts, and the one error that lists what failed.

Types are checked while composing (the schemas); here: ranges and choices of every key,
keys no schema knows, sizes that must divide each other, files and folders that must exist,
what the task can see is wrong (a missing sandbox, a missing data file), and a GPU asked for
on an embedded cluster of a machine without one. A refused command has written nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from orchestrator.config.fields import range_problems


class ConfigError(ValueError):
    """A config value is wrong; the message names every bad key."""


def unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys added (``+key=...``) under a schema that does not have them."""
    problems: list[str] = []
    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
        for key in node.keys():
            if fields is not None and str(key) not in fields:
                problems.append(f"{prefix}{key}: unknown key (valid keys in {prefix.rstrip('.') or 'the top level'}: "
                                f"{', '.join(sorted(fields))})")
            elif not OmegaConf.is_missing(node, key):
                try:
                    problems += unknown_keys(node[key], f"{prefix}{key}.")
                except Exception:  # noqa: BLE001 - unresolvable interpolation: reported elsewhere
                    pass
    elif isinstance(node, ListConfig):
        pass
    return problems


def resume_problems(cfg: Any) -> list[str]:
    resume = cfg.trainer.resume
    if not resume or resume == "latest" or "://" in resume:  # a URI is read by Ray Train once it starts
        return []
    from orchestrator.worker.checkpoint import STATE_FILE, find_latest

    path = Path(resume).expanduser()
    if not path.exists():
        return [f"trainer.resume: {resume} does not exist (give a checkpoint folder, a run folder, or latest)"]
    if not (path / STATE_FILE).exists() and find_latest(path) is None:
        return [f"trainer.resume: {resume} holds no checkpoint (no {STATE_FILE} in or below it)"]
    return []


def trainer_problems(cfg: Any) -> list[str]:
    if cfg.trainer.parallel == "fsdp" and not cfg.trainer.use_gpu:
        return ["trainer.parallel: fsdp shards the model over GPUs; it needs trainer.use_gpu=true (ddp on CPUs)"]
    return []


def environment_problems(cfg: Any) -> list[str]:
    """What this machine cannot do. A GPU run joining a cluster is checked once connected
    (:func:`orchestrator.launch.ray_cluster.check_cluster`): the driver may have no GPU itself."""
    if cfg.trainer.use_gpu and not cfg.ray.address:
        import torch

        if not torch.cuda.is_available():
            return ["trainer.use_gpu: true, but this machine has no CUDA device and ray.address is unset (an "
                    "embedded cluster of this machine); use trainer.use_gpu=false, or ray.address=auto on a GPU cluster"]
    return []


def model_problems(cfg: Any) -> list[str]:
    model = cfg.model
    if model.source == "hub" and not model.pretrained:
        return [f"model.pretrained: model={model.name} has source hub, so it must name a hub model or a folder"]
    if model.source == "tiny" and model.tiny is None:
        return [f"model.tiny: model={model.name} has source tiny, so it needs a tiny: recipe"]
    return []


def mode_problems(cfg: Any, task: Any) -> list[str]:
    """What the task can do: an evaluation run of its own, RL (rollouts) or SFT only."""
    from orchestrator.algos import ALGORITHMS

    if cfg.mode == "eval":
        if not task.has_evaluation:
            return [f"mode: eval, but task={task.name} has no evaluation run of its own (mode=train evaluates it "
                    "during training)"]
        if cfg.infer is None:
            return ["infer: mode=eval needs the search settings, infer=<option> (conf/infer/: dfsdt, react)"]
        return []
    if not task.has_rollouts and ALGORITHMS[cfg.algo.name].learns_from == "rollouts":
        return [f"algo: {cfg.algo.name} learns from rollouts, but task={task.name} has none here; use algo=sft"]
    return []


def collect_problems(cfg: DictConfig, check_environment: bool = True) -> tuple[list[str], Any]:
    """(problems, the typed config or None when it could not be built)."""
    problems = unknown_keys(cfg) + range_problems(cfg)
    if problems:
        return problems, None
    try:
        typed = OmegaConf.to_object(cfg)
    except Exception as err:  # noqa: BLE001 - an interpolation or missing value: one line
        return [str(err).splitlines()[0]], None
    from orchestrator.config.derive import check_shapes
    from orchestrator.task import build_task

    problems += check_shapes(typed) + resume_problems(typed) + model_problems(typed) + trainer_problems(typed)
    try:
        task = build_task(typed.task)
        problems += task.problems() + mode_problems(typed, task)
    except (ValueError, FileNotFoundError) as err:
        problems.append(str(err))
    if check_environment:
        problems += environment_problems(typed)
    return problems, typed


def check(cfg: DictConfig, check_environment: bool = True) -> Any:
    """The typed config; :class:`ConfigError` listing every problem otherwise."""
    problems, typed = collect_problems(cfg, check_environment)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return typed
