"""Several Ray nodes in one process (``ray.cluster_utils.Cluster``): the README's two-worker PPO
command with its Train workers on two nodes and the tool actors on the tool node, then a 2-seed
sweep spread over the nodes.

The cluster: a head without CPUs (the driver), two train nodes with one CPU each, and a tool
node with no CPU and the custom resource ``tool_node`` (as cluster.yaml's CPU workers). Nothing
pins a Train worker to a node: one CPU per worker and per node spreads them. Nothing in the
config pins the tools either: the cluster's ``tool_node`` does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.tools.pool import TOOL_NODE_RESOURCE, PoolOptions, place
from tests.conftest import WARM_START, make_cfg

# One sample a held-out problem at the end too (the calculator's default is 16: ~15 s a run here).
SMALL = ["trainer.batch_size=16", "algo.minibatch_size=8", "trainer.eval_every=0", "trainer.final_eval_samples=1",
         "logger=none", *WARM_START]


def test_tool_actors_go_to_tool_nodes_unless_told_otherwise():
    default = PoolOptions()
    assert place(default, {"CPU": 8.0}) is default  # no tool nodes: anywhere
    assert place(default, {"CPU": 8.0, TOOL_NODE_RESOURCE: 100.0}).resources == {TOOL_NODE_RESOURCE: 0.01}
    chosen = PoolOptions(resources={"search_index": 1.0})
    assert place(chosen, {"CPU": 8.0, TOOL_NODE_RESOURCE: 100.0}) is chosen  # the task's own choice wins


@pytest.fixture(scope="module")
def cluster(calculator_warm_start):
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()  # the session's shared cluster; the next test that needs it starts it again
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = {
        "train": [cluster.add_node(num_cpus=1) for _ in range(2)],
        "tool": cluster.add_node(num_cpus=0, resources={TOOL_NODE_RESOURCE: 1}),
    }
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)  # as the CLI joins one
    try:
        yield {"train": {n.node_id for n in nodes["train"]}, "tool": nodes["tool"].node_id}
    finally:
        ray.shutdown()
        cluster.shutdown()


def actor_nodes(before: set[str]) -> dict[str, list[str]]:
    """Node ids of the actors created since ``before``, by class (dead ones included: from the GCS)."""
    import ray._private.state

    out: dict[str, list[str]] = {}
    for actor_id, info in ray._private.state.actors().items():
        if actor_id not in before:
            out.setdefault(info["ActorClassName"], []).append(info["Address"]["NodeID"])
    return out


def known_actors() -> set[str]:
    import ray._private.state

    return set(ray._private.state.actors())


def steps(trial_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["step"] for r in rows if "env/reward_mean" in r]


@pytest.mark.ray
@pytest.mark.slow
def test_ppo_on_two_nodes_with_tools_on_the_tool_node(cluster, tmp_path, model_cache, capfd):
    """The README's ``trainer.num_workers=2`` command (shortened), through the command line's entry:
    one DDP worker on each train node, in sync, the tool actors on the tool node, a quiet console."""
    from tests.readme_commands import TWO_WORKERS, assert_quiet, run_here, shortened

    before = known_actors()
    metrics, console = run_here(shortened(TWO_WORKERS, tmp_path / "ppo", model_cache), capfd)
    assert "eval/accuracy" in console
    assert_quiet(console)
    assert metrics["step"] == 2 and metrics["dist/world_size"] == 2
    assert metrics["dist/param_digest_spread"] == 0.0  # DDP across the two nodes kept the weights equal
    placed = actor_nodes(before)
    # one worker on each train node (the warm start's workers too, when this run built it)
    per_node = Counter(placed["RayTrainWorker"])
    assert set(per_node) == cluster["train"] and len(set(per_node.values())) == 1, per_node
    assert placed["ToolActor"] == [cluster["tool"]]
    # the placement line is in the run's own log (the driver's logging goes there, not to pytest's)
    driver_log = (tmp_path / "ppo" / "logs" / "driver.log").read_text()
    assert f"Calculator: 1 actor(s) on node {cluster['tool'][:8]} (tool_node)" in driver_log, driver_log[-3000:]


@pytest.mark.ray
@pytest.mark.slow
def test_two_seed_sweep_spreads_over_the_nodes(cluster, tmp_path, model_cache):
    """A 2-seed sweep end to end: both trials at once, one on each train node, each its own W&B run
    and curve; the summary, its table and the seed plot."""
    from orchestrator.launch.sweep import run_sweep

    before = known_actors()
    small = [o for o in SMALL if not o.startswith(("logger=", "trainer.eval_every="))]
    summary = run_sweep(make_cfg(["sweep=seeds", "sweep.num_seeds=2", "trainer.max_steps=2", "trainer.eval_every=2",
                                  "logger=wandb", "logger.tags=[test]", f"cache_dir={model_cache}",
                                  f"output_dir={tmp_path}/sweep", *small]))
    sweep = Path(summary["sweep_dir"])
    assert summary["trials"] == 2 and summary["failed"] == 0
    assert (sweep / "seeds.png").exists() and (sweep / "summary.md").exists()
    curves = {}
    for seed in (0, 1):
        trial = sweep / "trials" / f"seed{seed}"
        assert steps(trial) == [1, 2]
        rows = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines() if line.strip()]
        curves[seed] = [r["env/reward_mean"] for r in rows if "env/reward_mean" in r] + \
                       [r["eval/accuracy"] for r in rows if "eval/accuracy" in r]
        assert len(list((trial / "wandb").glob("offline-run-*"))) == 1
    assert curves[0] != curves[1]  # the seed changed the run
    placed = actor_nodes(before)
    # both trials at once (2 CPUs, one worker each): one trial's worker on each train node
    assert sorted(placed["RayTrainWorker"]) == sorted(cluster["train"])
    assert set(placed["ToolActor"]) == {cluster["tool"]} and len(placed["ToolActor"]) == 2
