"""Composing the config from conf/ and the command line, with one clear line per mistake.

Hydra's own messages for a mistyped key ("Key 'foo' is not in struct") or a wrong type
("Value 'abc' of type 'str' could not be converted to Integer") do not say what is valid;
:func:`check_overrides` composes the config once before Hydra runs and turns each failure
into ``key: what was wrong (valid: ...)``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# Dicts whose keys the user chooses: `sweep.params.algo.lr=[...]` adds a key, which Hydra
# spells `+sweep.params.algo.lr=[...]`; we accept both.
OPEN_DICTS = ("sweep.params.", "task.tools.resources.")

_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def normalize_argv(argv: list[str]) -> list[str]:
    return ["+" + a if a.startswith(OPEN_DICTS) else a for a in argv]


def groups() -> dict[str, list[str]]:
    """Config group -> its options (the YAML files of conf/<group>/)."""
    return {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in sorted(CONF_DIR.iterdir()) if g.is_dir()}


def compose_config(overrides: list[str]) -> DictConfig:
    """The composed config (Hydra's ``compose``); Hydra's exceptions propagate."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from orchestrator.config.store import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=normalize_argv(overrides))
    finally:
        GlobalHydra.instance().clear()


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _unknown_key_message(cfg: Any, key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    valid = sorted(node.keys()) if isinstance(node, DictConfig) else []
    where = f"in {parent}" if parent else "at the top level"
    hint = difflib.get_close_matches(leaf, valid, n=1)
    did_you_mean = f" Did you mean {parent + '.' if parent else ''}{hint[0]}?" if hint else ""
    return f"unknown key '{key}' {where}.{did_you_mean} Valid keys {where}: {', '.join(valid)}"


def explain_composition_error(err: Exception, overrides: list[str]) -> str:
    """One line for a failed compose: the key, the value and what is valid."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    if isinstance(err, MissingConfigException):
        return str(err).split("Config search path")[0].strip().replace("\n\t", " ").replace("\n\n", " ")
    cause = err.__cause__ or err
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        group_overrides = [o for o in overrides if _split(o)[0] in groups()]
        try:
            base = compose_config(group_overrides)
        except Exception:  # noqa: BLE001
            base = None
        if base is not None:
            return _unknown_key_message(base, str(cause.full_key))
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        first = str(cause.msg).splitlines()[0]
        value = getattr(cause, "value", None)
        expected = re.search(r"could not be converted to (\w+)", first)
        if expected:
            return f"{cause.full_key}: expected {_TYPE_WORDS.get(expected.group(1), expected.group(1))}, got {value!r}"
        if "is not a valid bool" in first:
            return f"{cause.full_key}: expected true or false, got {value!r}"
        return f"{cause.full_key}: {first}"
    return f"{str(err).strip().splitlines()[0]} ({str(cause).strip().splitlines()[0]})"


def check_overrides(argv: list[str], check_environment: bool = True) -> str | None:
    """Compose with ``argv``'s overrides and check the result; the first problem as a message, or None."""
    if any(a.startswith("-") for a in argv):  # --help, --cfg, -m (sweep syntax): Hydra handles them
        return None
    overrides = [a for a in normalize_argv(argv) if "=" in a and not a.startswith("hydra.")]
    from orchestrator.config.checks import ConfigError, check

    try:
        cfg = compose_config(overrides)
    except Exception as err:  # noqa: BLE001 - any composition error becomes one line
        return explain_composition_error(err, overrides)
    try:
        check(cfg, check_environment=check_environment)
    except ConfigError as err:
        return str(err)
    return None
