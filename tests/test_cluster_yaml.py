"""cluster.yaml passes Ray's own autoscaler validation (no cloud call)."""

import copy

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO


@pytest.fixture(scope="module")
def cluster():
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_is_a_valid_autoscaler_config(cluster):
    validate_config(prepare_config(copy.deepcopy(cluster)))


def test_cluster_has_head_gpu_and_tool_nodes(cluster):
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types
    assert any(t["node_config"]["InstanceType"].startswith(("g5", "p3", "p4", "p5")) for t in types.values())
    assert any("tool_node" in t.get("resources", {}) for t in types.values())
    assert any("scripts/install.sh" in c for c in cluster["setup_commands"])


def test_validation_catches_a_broken_config(cluster):
    broken = copy.deepcopy(cluster)
    broken["available_node_types"]["gpu_worker"]["max_workers"] = "many"
    with pytest.raises(Exception):
        validate_config(prepare_config(broken))
