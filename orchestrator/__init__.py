"""toolrl: teach language models to use tools with RL, orchestrated on Ray.

The data flow, top down: ``conf/`` (Hydra; schemas in :mod:`orchestrator.config`) ->
:mod:`orchestrator.launch` (the command line, the experiment, Ray, the warm start, Ray Train,
Tune sweeps) -> :mod:`orchestrator.worker` (the loop of every Ray Train worker) ->
:mod:`orchestrator.rollout` (the environment and the sampler) <-> :mod:`orchestrator.tools`
(Ray actors) -> :mod:`orchestrator.algos` (PPO, GRPO, SFT) -> :mod:`orchestrator.tracking`.
Tasks plug in through :mod:`orchestrator.task`.
"""

__version__ = "0.2.0"
