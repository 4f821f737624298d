"""The schema of every generic config group: keys, types and valid ranges.

Values live in ``conf/<group>/<option>.yaml`` (each key with a comment); the algorithm and
task groups take their schemas from the algorithm (:mod:`orchestrator.algos`) and the task
(``tasks/``) that own them. :mod:`orchestrator.config.store` registers all of them in
Hydra's ConfigStore, so composing a config checks every key's type, and
:func:`orchestrator.config.checks.check` every key's range, before Ray starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from orchestrator.config.fields import value

# ---------------------------------------------------------------- ray


@dataclass
class RayConfig:
    """Where the run's Ray cluster comes from."""

    address: Optional[str] = value()
    num_cpus: Optional[int] = value(ge=1)


# ---------------------------------------------------------------- trainer


@dataclass
class TrainerConfig:
    """The Ray Train run: workers, steps, evaluation, checkpoints, recovery."""

    num_workers: int = value(ge=1)
    use_gpu: bool = value()
    max_steps: int = value(ge=0)
    batch_size: int = value(ge=1)
    eval_every: int = value(ge=0)
    checkpoint_every: int = value(ge=0)
    keep_checkpoints: int = value(ge=1)
    # Where Ray Train writes checkpoints and results: null (<output_dir>/ray) or a URI (s3://, gs://, file://).
    storage: Optional[str] = value()
    resume: Optional[str] = value()
    max_failures: int = value(ge=-1)
    cpus_per_worker: Optional[float] = value(gt=0)
    threads_per_worker: Optional[int] = value(ge=1)
    temperature: float = value(gt=0)
    lean_decoder: bool = value()
    log_every: int = value(ge=1)
    # ddp | fsdp (sharded weights, gradients and optimizer state; GPUs only).
    parallel: str = value(choices=("ddp", "fsdp"), default="ddp")
    # Hydra `_target_` dicts of worker-loop callbacks (orchestrator.worker.callbacks).
    callbacks: List[Dict[str, Any]] = value(default=[])
    # Runs that learn from demonstrations (SFT): each step's of similar lengths (Hugging Face's
    # group_by_length), so a batch pads less; rollouts are unaffected.
    group_by_length: bool = value(default=False)
    # Sampled episodes per held-out problem at the last evaluation (avg@k).
    final_eval_samples: int = value(ge=1, default=1)


# ---------------------------------------------------------------- logger


@dataclass
class LoggerConfig:
    """Where metrics go besides metrics.jsonl."""

    name: str = value(choices=("wandb", "none"))
    project: Optional[str] = value()
    entity: Optional[str] = value()
    mode: str = value(choices=("auto", "online", "offline", "disabled"))
    tags: List[str] = value()
    num_sample_episodes: int = value(ge=0)


# ---------------------------------------------------------------- sweep


@dataclass
class SweepConfig:
    """A Ray Tune sweep over seeds crossed with a grid."""

    name: str = value()
    num_seeds: int = value(ge=1)
    start_seed: int = value(ge=0)
    params: Dict[str, Any] = value()
    max_concurrent_trials: Optional[int] = value(ge=1)
    max_failures: int = value(ge=0)
    resume: bool = value()
    plot_metrics: List[str] = value()


# ---------------------------------------------------------------- model


@dataclass
class TinyRecipe:
    """Everything that decides the tiny model's weights; every field is part of its cache key."""

    arch: str = value(choices=("llama", "gpt2"))
    n_layer: int = value(ge=1)
    n_embd: int = value(ge=8)
    n_head: int = value(ge=1)
    # null: the task's episode length (task.env.max_length), resolved by derive().
    n_positions: Optional[int] = value(ge=8)
    sft_demos: int = value(ge=1)
    sft_steps: int = value(ge=1)
    sft_batch_size: int = value(ge=1)
    sft_lr: float = value(gt=0)
    sft_warmup_steps: int = value(ge=0)
    # null: the run's seed.
    seed: Optional[int] = value(ge=0)
    # Steps of copy pretraining before any SFT (orchestrator/models/copying.py); 0: none.
    copy_steps: int = value(ge=0, default=0)
    # Learning rate of the copy pretraining.
    copy_lr: float = value(gt=0, default=1e-3)


@dataclass
class LoraSpec:
    """LoRA adapters (peft) instead of training every weight."""

    r: int = value(ge=1)
    alpha: float = value(gt=0)
    dropout: float = value(ge=0, lt=1)
    target_modules: List[str] = value()


@dataclass
class ModelConfig:
    """The policy's weights: built here (tiny) or from the hub, and how they train."""

    name: str = value()
    source: str = value(choices=("tiny", "hub"))
    pretrained: Optional[str] = value()
    few_shot: bool = value()
    dtype: str = value(choices=("float32", "bfloat16", "float16"))
    tiny: Optional[TinyRecipe] = value()
    # Recompute activations in the backward pass (long contexts on GPUs).
    gradient_checkpointing: bool = value(default=False)
    # Longer contexts than the model was trained for, e.g. {rope_type: linear, factor: 2.0} (ToolLLaMA's 8k).
    rope_scaling: Optional[Dict[str, Any]] = value(default=None)
    # LoRA adapters; null: full fine-tuning.
    lora: Optional[LoraSpec] = value(default=None)


# ---------------------------------------------------------------- task (generic parts)


@dataclass
class EnvConfig:
    """Limits of one episode."""

    max_turns: int = value(ge=1)
    max_new_tokens: int = value(ge=1)
    max_tool_response: int = value(ge=0)
    max_length: int = value(ge=2)


@dataclass
class ToolsConfig:
    """How a task's tool actors are placed and guarded (orchestrator.tools.pool.PoolOptions)."""

    num_actors: int = value(ge=1)
    num_cpus: float = value(ge=0)
    resources: Dict[str, float] = value()
    timeout_s: float = value(gt=0)
    max_concurrency: int = value(ge=1)


@dataclass
class TaskConfig:
    """A task: its name (the registry key), episode limits, tool placement and its own spec."""

    name: str = value()
    env: EnvConfig = value()
    tools: ToolsConfig = value()
    # The task's own schema (tasks/<name>: its Spec dataclass).
    spec: Any = None


# ---------------------------------------------------------------- the whole run


@dataclass
class RunConfig:
    """``conf/config.yaml`` and its groups."""

    seed: int = value(ge=0)
    mode: str = value(choices=("train", "eval"))
    experiment_name: str = value()
    output_dir: str = value()
    cache_dir: str = value()
    ray: RayConfig = value()
    task: Any = None
    model: Any = None
    algo: Any = None
    trainer: Any = None
    logger: Any = None
    sweep: Optional[Any] = None
    # A task's own group (ToolBench's infer=dfsdt|react, for mode=eval).
    infer: Optional[Any] = None
