"""The task API's shared parts: the registry, hub-or-local data, paths, the demonstration mix."""

import random

import pytest

from orchestrator.task import build_task, sources, task_classes
from orchestrator.task.demonstrations import ToolDemo, mix_demonstrations, total_demos
from tests.conftest import make_cfg


def test_registry_has_every_task_of_conf():
    from orchestrator.config.compose import groups

    assert sorted(task_classes()) == sorted(groups()["task"])


def test_an_unknown_task_name_says_which_exist():
    cfg = make_cfg(["task=calculator"])
    cfg.task.name = "nope"
    with pytest.raises(ValueError, match="no task 'nope' .*calculator"):
        build_task(cfg.task)


def test_hub_or_local_follows_the_hub(monkeypatch):
    hub, local = (lambda: "hub"), (lambda: "local")
    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    assert sources.hub_or_local("auto", "x", hub, local) == "local"
    monkeypatch.setattr(sources, "hub_reachable", lambda: True)
    assert sources.hub_or_local("auto", "x", hub, local) == "hub"
    assert sources.hub_or_local("local", "x", hub, local) == "local"

    def broken():
        raise ConnectionError("hub down")

    assert sources.hub_or_local("auto", "x", broken, local) == "local"  # auto falls back
    with pytest.raises(ConnectionError):
        sources.hub_or_local("hub", "x", broken, local)
    with pytest.raises(ValueError, match="source must be one of auto, hub, local"):
        sources.hub_or_local("web", "x", hub, local)


def test_missing_local_files_say_whether_the_hub_was_asked(monkeypatch):
    def missing():
        raise FileNotFoundError("/data/train.jsonl not found")

    monkeypatch.setattr(sources, "hub_reachable", lambda: False)
    with pytest.raises(FileNotFoundError, match="the hub did not answer"):
        sources.hub_or_local("auto", "x", lambda: "hub", missing)
    with pytest.raises(FileNotFoundError, match="the hub was not asked"):
        sources.hub_or_local("local", "x", lambda: "hub", missing)


def test_resolve_path_tries_cwd_then_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sources.resolve_path("conf/config.yaml") == sources.PROJECT_ROOT / "conf" / "config.yaml"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("")
    assert sources.resolve_path("conf/config.yaml") == tmp_path / "conf" / "config.yaml"
    assert sources.resolve_path("/abs/x") == sources.Path("/abs/x")


def test_the_demonstration_mix():
    demo = ToolDemo(opener="<request><T>", prompt=lambda p: f"Q{p}\n\n", query=lambda p: str(p),
                    observe=lambda ps: [f"obs{p}" for p in ps], answer=lambda p: f"\n\nResult={p}<submit>",
                    guess=lambda p, rng: f"Result={p + 1}<submit>")
    problems = list(range(total_demos(1000, 2.0)))
    demos = mix_demonstrations(problems, 1000, 0.3, demo, random.Random(0))
    assert len(demos) == 3000
    practice = [d for d in demos if d[0][1].endswith("<request><T>")]
    decisions = [d for d in demos if not d[0][1].endswith("<request><T>")]
    assert len(practice) == 2000
    used = [d for d in decisions if d[1][1].startswith("<request><T>")]
    assert 0.25 < len(used) / 1000 < 0.35
    for d in used + practice:  # the observation is the tool's, never the model's, and matches the query
        query = d[1][1].removeprefix("<request><T>").removesuffix("<call>")
        assert d[2] == ("tool", f"obs{query}<response>") and d[3] == ("model", f"\n\nResult={query}<submit>")
    guesses = [d for d in decisions if d not in used]
    assert all(len(d) == 2 and d[1][0] == "model" and d[1][1].startswith("Result=") for d in guesses)
