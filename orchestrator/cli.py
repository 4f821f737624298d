"""Command-line checks and the closing summary.

Hydra's own errors for a mistyped key ("Key 'foo' is not in struct") do not say what the
valid keys are; we compose the config once before Hydra runs and turn every such
failure into one line that names the key and the choices.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _keys_of(node: Any) -> list[str]:
    from omegaconf import DictConfig

    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def _unknown_key_message(cfg: Any, key: str) -> str:
    from omegaconf import OmegaConf

    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    valid = _keys_of(node)
    where = f"in {parent}" if parent else "at the top level"
    hint = difflib.get_close_matches(leaf, valid, n=1)
    did_you_mean = f" Did you mean {parent + '.' if parent else ''}{hint[0]}?" if hint else ""
    return f"unknown key '{key}' {where}.{did_you_mean} Valid keys {where}: {', '.join(valid)}"


# Dicts whose keys the user chooses: `sweep.params.algo.lr=[...]` adds a key, which Hydra
# spells `+sweep.params.algo.lr=[...]`; we accept both.
OPEN_DICTS = ("sweep.params.", "task.tools.resources.")


def normalize_argv(argv: list[str]) -> list[str]:
    return ["+" + a if a.startswith(OPEN_DICTS) else a for a in argv]


def check_overrides(argv: list[str], check_environment: bool = True) -> str | None:
    """Compose the config with ``argv``'s overrides; return a clear message for the first problem.

    ``check_environment=False`` skips checks of this machine (a GPU run documented for elsewhere).
    """
    argv = normalize_argv(argv)
    if any(a.startswith("-") for a in argv):  # --help, --cfg, -m (sweep syntax): Hydra handles them
        return None
    overrides = [a for a in argv if "=" in a and not a.startswith("hydra.")]
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from orchestrator.config import ConfigError, validate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            cfg = compose("config", overrides=overrides)
        except MissingConfigException as err:
            return str(err).split("Config search path")[0].strip().replace("\n\t", " ").replace("\n\n", " ")
        except ConfigCompositionException as err:
            groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
            base = compose("config", overrides=[o for o in overrides if _split(o)[0] in groups])
            for override in overrides:
                key, _ = _split(override)
                if key not in groups and not override.startswith("+") \
                        and OmegaConf.select(base, key, default="__missing__") == "__missing__":
                    return _unknown_key_message(base, key)
            cause = err.__cause__ or err
            return f"{str(err).strip()} ({str(cause).strip()})"
        except Exception as err:  # noqa: BLE001 - any composition error becomes one line
            return f"{type(err).__name__}: {str(err).strip()}"
    GlobalHydra.instance().clear()
    try:
        validate(cfg, check_environment=check_environment)
    except ConfigError as err:
        return str(err)
    return None


def print_summary(metrics: dict[str, Any]) -> None:
    """The closing lines of a run: held-out accuracy and where things were written."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="toolrl run", show_header=False)
    for key in ("eval/accuracy", "eval/accuracy_greedy", "env/reward_mean", "objective/kl", "step",
                "time/ray_start_s", "time/warm_start_s", "time/train_s", "output_dir", "checkpoint", "run_id"):
        if key in metrics:
            value = metrics[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
