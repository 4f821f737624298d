"""toolrl: teach language models to use tools with RL, orchestrated on Ray.

The data flow, top down: ``conf/`` (Hydra) -> :mod:`orchestrator.__main__` ->
:mod:`orchestrator.experiment` -> :mod:`orchestrator.launcher` (Ray Train / Tune) ->
:mod:`orchestrator.train_loop` (one per worker) -> :mod:`orchestrator.env` (rollout) <->
:mod:`orchestrator.tools` (Ray actors) -> :mod:`orchestrator.ppo` -> :mod:`orchestrator.tracking`.
"""

__version__ = "0.1.0"
