"""The console says when a run's workers wait for resources the cluster does not have free."""

from __future__ import annotations

import time

from orchestrator.launch.placement_watch import PlacementWatch, waiting_line


def test_the_line_names_what_is_asked_and_what_is_free():
    line = waiting_line({0: {"CPU": 2.0}}, {"CPU": 1.99, "memory": 1e10, "node:192.0.2.2": 1.0}, 65.2)
    assert line.startswith("waiting 65 s for Ray to place 1 worker(s) asking CPU 2 each; free now: CPU 1.99.")
    assert "trainer.cpus_per_worker" in line and "trainer.num_workers" in line and "memory" not in line


def test_a_group_pending_past_the_limit_is_said_once_a_minute_and_forgotten_once_placed():
    said, table = [], {"pg1": {"state": "PENDING", "bundles": {0: {"CPU": 2.0}}}, "pg0": {"state": "CREATED"}}
    watch = PlacementWatch(said.append, lambda: table, lambda: {"CPU": 1.99}, after_s=60, every_s=60)
    assert watch.check(0.0) is None and watch.check(59.0) is None  # pending, not yet long enough
    assert watch.check(61.0) and len(said) == 1 and "waiting 61 s" in said[0]
    assert watch.check(90.0) is None  # not again within the minute
    assert watch.check(122.0) and len(said) == 2
    table["pg1"]["state"] = "CREATED"  # placed: nothing more to say
    assert watch.check(200.0) is None and watch.pending_since == {}
    table["pg2"] = {"state": "PENDING", "bundles": {0: {"CPU": 1.0}, 1: {"CPU": 1.0}}}
    assert watch.check(210.0) is None  # a new wait starts its own clock
    assert "2 worker(s) asking CPU 1 each" in watch.check(271.0)


def test_on_a_live_cluster_a_group_that_cannot_be_placed_is_said(local_ray):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    from orchestrator.launch.placement_watch import watching

    said: list[str] = []
    asked = ray.cluster_resources()["CPU"] + 1
    too_big = placement_group([{"CPU": asked}])  # never placed on this cluster
    try:
        with watching(said.append, after_s=0.5, every_s=60, poll_s=0.2):
            deadline = time.monotonic() + 20
            while not said and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        remove_placement_group(too_big)
    assert said and f"asking CPU {asked:g} each; free now: CPU " in said[0], said
