"""Entry point: ``python -m orchestrator task=calculator model=tiny trainer.num_workers=2``."""

from orchestrator.launch.cli import main

if __name__ == "__main__":
    main()
