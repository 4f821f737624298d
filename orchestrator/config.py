"""Checking a composed config before anything starts, with messages that name the key.

Hydra catches unknown groups, options and keys (struct mode); this module catches bad
values: wrong types, out-of-range numbers, unknown choices, each reported as
``key: what was wrong (valid: ...)`` in one message.
"""

from __future__ import annotations

from typing import Any, Callable

from omegaconf import DictConfig


class ConfigError(ValueError):
    """A config value is wrong; the message names every bad key."""


def _int(min_value: int | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"expected an integer, got {v!r}"
        if min_value is not None and v < min_value:
            return f"must be >= {min_value}, got {v}"
        return None
    return check


def _opt_int(min_value: int) -> Callable[[Any], str | None]:
    inner = _int(min_value)
    return lambda v: None if v is None else inner(v)


def _float(min_value: float | None = None, exclusive: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"expected a number, got {v!r}"
        if min_value is not None and (v <= min_value if exclusive else v < min_value):
            return f"must be {'>' if exclusive else '>='} {min_value}, got {v}"
        return None
    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"expected true or false, got {v!r}"


def _choice(*choices: Any) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"got {v!r} (valid: {', '.join(map(str, choices))})"


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "seed": _int(0),
    "trainer.num_workers": _int(1),
    "trainer.use_gpu": _bool,
    "trainer.max_steps": _int(0),
    "trainer.batch_size": _int(1),
    "trainer.eval_every": _int(0),
    "trainer.checkpoint_every": _int(0),
    "trainer.keep_checkpoints": _int(1),
    "trainer.max_failures": _int(-1),
    "trainer.threads_per_worker": _opt_int(1),
    "trainer.cpus_per_worker": lambda v: None if v is None else _float(0.0, exclusive=True)(v),
    "sweep.num_seeds": _int(1),
    "sweep.start_seed": _int(0),
    "sweep.max_concurrent_trials": _opt_int(1),
    "sweep.max_failures": _int(0),
    "sweep.resume": _bool,
    "trainer.temperature": _float(0.0, exclusive=True),
    "trainer.log_every": _int(1),
    "trainer.lean_decoder": _bool,
    "model.source": _choice("tiny", "hub"),
    "model.tiny.arch": _choice("llama", "gpt2"),
    "model.dtype": _choice("float32", "bfloat16", "float16"),
    "model.few_shot": _bool,
    "logger.name": _choice("wandb", "none"),
    "logger.mode": _choice("auto", "online", "offline", "disabled"),
    "task.env.max_turns": _int(1),
    "task.env.max_new_tokens": _int(1),
    "task.env.max_tool_response": _int(0),
    "task.env.max_length": _int(2),
    "task.tools.num_actors": _int(1),
    "task.tools.timeout_s": _float(0.0, exclusive=True),
    "algo.lr": _float(0.0, exclusive=True),
    "algo.ppo_epochs": _int(1),
    "algo.minibatch_size": _int(1),
}


def _get(cfg: DictConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def validate(cfg: DictConfig, check_environment: bool = True) -> None:
    """Raise :class:`ConfigError` listing every bad value; derived constraints included."""
    problems = []
    for key, check in CHECKS.items():
        value = _get(cfg, key)
        if value is _MISSING:
            continue
        msg = check(value)
        if msg:
            problems.append(f"{key}: {msg}")
    tr = cfg.trainer
    if not problems:
        if tr.batch_size % tr.num_workers:
            problems.append(f"trainer.batch_size: {tr.batch_size} does not split evenly over trainer.num_workers={tr.num_workers}")
        elif cfg.algo.minibatch_size > tr.batch_size:
            problems.append(f"algo.minibatch_size: {cfg.algo.minibatch_size} is larger than trainer.batch_size={tr.batch_size}")
        elif cfg.algo.minibatch_size % tr.num_workers:
            problems.append(f"algo.minibatch_size: {cfg.algo.minibatch_size} does not split evenly over "
                            f"trainer.num_workers={tr.num_workers} (it counts episodes over all workers)")
        if tr.use_gpu and check_environment:
            try:
                import torch

                if not torch.cuda.is_available():
                    problems.append("trainer.use_gpu: true, but torch sees no CUDA device on this machine (use trainer.use_gpu=false)")
            except ImportError:
                pass
        if cfg.model.source == "tiny" and cfg.task.env.max_length > cfg.model.tiny.n_positions:
            problems.append(f"task.env.max_length: {cfg.task.env.max_length} exceeds model.tiny.n_positions={cfg.model.tiny.n_positions}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
