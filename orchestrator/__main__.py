"""Entry point: ``python -m orchestrator task=calculator model=tiny trainer.num_workers=2``.

``--help`` lists the config groups and their options (Hydra). Overrides are checked
before anything starts: an unknown key gets the valid keys of its section, a bad value
gets the key and the valid range, each in one message.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from orchestrator.cli import check_overrides, normalize_argv, print_summary

log = logging.getLogger("orchestrator")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    from orchestrator.config import ConfigError

    logging.getLogger("orchestrator").setLevel(logging.INFO)
    try:
        if cfg.get("sweep"):
            from orchestrator.sweep import run_sweep

            metrics = run_sweep(cfg)
        else:
            from orchestrator.experiment import run

            metrics = run(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print_summary(metrics)
    return metrics.get("eval/accuracy")


def main() -> None:
    sys.argv[1:] = normalize_argv(sys.argv[1:])
    error = check_overrides(sys.argv[1:])
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
