"""The raylet's messages reach the log file, not the console (no Ray cluster needed)."""

from __future__ import annotations

import logging

import ray._private.worker as ray_worker

from orchestrator.launch.ray_cluster import route_raylet_messages_to_log

STARTUP_WARNING = ("WARNING: 8 PYTHON worker processes have been started on node: 8f3d... which is 4x the "
                   "maximum expected startup concurrency (2).")


def test_raylet_messages_go_to_the_log_and_worker_output_still_prints(monkeypatch, capsys, caplog):
    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)  # restored after
    route_raylet_messages_to_log()
    route_raylet_messages_to_log()  # a second ray.init in one process wraps it once
    assert getattr(ray_worker.print_to_stdstream, "routes_raylet", False)
    with caplog.at_level(logging.WARNING, logger="raylet"):
        ray_worker.print_to_stdstream({"lines": [STARTUP_WARNING], "pid": "raylet", "is_err": False},
                                      ignore_prefix=False)
        ray_worker.print_to_stdstream({"lines": ["a worker's own line"], "pid": 1234, "ip": "192.0.2.2",
                                       "is_err": False, "actor_name": "", "task_name": "", "job": "01"},
                                      ignore_prefix=True)
    out = capsys.readouterr().out
    assert "PYTHON worker processes" not in out
    assert [r.getMessage() for r in caplog.records if r.name == "raylet"] == [STARTUP_WARNING]
    assert "a worker's own line" in out  # what is not the raylet's is printed as Ray prints it
