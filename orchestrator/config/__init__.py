"""The config: schemas (types and ranges) of every group, checks before Ray starts, derived numbers."""

from orchestrator.config.checks import ConfigError, check
from orchestrator.config.compose import CONF_DIR, check_overrides, compose_config

__all__ = ["CONF_DIR", "ConfigError", "check", "check_overrides", "compose_config"]
