"""The config: every group option composes and checks; every key refuses a bad value with one
line naming it, before Ray starts and without writing anything; the YAML files document every
key and never read another group's keys."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from orchestrator.config import CONF_DIR, ConfigError, check, check_overrides
from orchestrator.config.compose import groups
from orchestrator.task import build_task
from tests.conftest import make_cfg

GROUPS = groups()
OPTIONS = [(g, o) for g, opts in GROUPS.items() for o in opts if g not in ("experiment", "hparams")]


# Options that need a value from the user (model=local: model.pretrained=PATH), and what a user gives.
REQUIRED = {("model", "local"): ["model.pretrained=/tmp"], ("infer", "dfsdt"): ["task=toolbench", "mode=eval"],
            ("infer", "react"): ["task=toolbench", "mode=eval"]}


@pytest.mark.parametrize("group, option", OPTIONS)
def test_every_group_option_composes(group, option):
    cfg = make_cfg([f"{group}={option}", *REQUIRED.get((group, option), [])])
    if group == "task":
        task = build_task(cfg.task)
        assert (task.tools() and task.eval_problems()) if task.has_rollouts else task.heldout_demonstrations()
    if group == "task" and not build_task(cfg.task).has_rollouts:
        cfg = make_cfg([f"{group}={option}", "algo=sft"])
    check(cfg, check_environment=False)


@pytest.mark.parametrize("name", GROUPS["experiment"] + GROUPS["hparams"])
def test_every_experiment_and_hparams_file_applies(name):
    """Each specialisation composes with the options its name says (task_model, model_algo)."""
    group = "experiment" if name in GROUPS["experiment"] else "hparams"
    pair = next(((a, name[len(a) + 1:]) for a in sorted(GROUPS["task" if group == "experiment" else "model"],
                                                         key=len, reverse=True) if name.startswith(a + "_")), None)
    if pair is None:  # a named experiment (experiment=toolllama), chosen by the user
        overrides = [f"experiment={name}", "ray.address=auto"]
    elif group == "experiment":
        overrides = [f"task={pair[0]}", f"model={pair[1]}"]
        if not build_task(make_cfg(overrides).task).has_rollouts:
            overrides.append("algo=sft")
    else:
        overrides = [f"model={pair[0]}", f"algo={pair[1]}"]
    cfg = make_cfg(overrides)
    check(cfg, check_environment=False)
    own = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    for key, value in _leaves(own):
        assert OmegaConf.select(cfg, key) == value, f"{name}.yaml's {key} did not reach the composed config"


def _leaves(node, prefix=""):
    for key, value in node.items():
        if key == "defaults":
            continue
        if isinstance(value, DictConfig):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize(
    "overrides",
    [
        ["task=calculator", "model=tiny", "algo=ppo", "trainer.num_workers=2", "trainer.use_gpu=false",
         "trainer.max_steps=5", "trainer.eval_every=2", "seed=3", "logger=none", "output_dir=/tmp/x"],
        ["logger=wandb", "ray.address=auto", "trainer.lean_decoder=false"],
        ["ray.address=127.0.0.1:6379"],
        ["algo=grpo", "algo.group_size=4"],
        ["algo=sft", "trainer.num_workers=2"],
    ],
)
def test_documented_overrides_are_accepted(overrides):
    assert check_overrides(overrides) is None


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["task=nope"], "Available options in 'task': calculator"),
        (["trainer.num_worker=2"], "unknown key 'trainer.num_worker' in trainer. Did you mean trainer.num_workers?"),
        (["nonsense=1"], "unknown key"),
        (["trainer.num_workers=abc"], "trainer.num_workers: expected an integer, got 'abc'"),
        (["trainer.num_workers=0"], "trainer.num_workers: must be >= 1"),
        (["trainer.use_gpu=maybe"], "trainer.use_gpu: expected true or false"),
        (["trainer.lean_decoder=fast"], "trainer.lean_decoder: expected true or false"),
        (["logger.mode=loud"], "logger.mode: got 'loud' (valid: auto, online, offline, disabled)"),
        (["trainer.batch_size=63", "trainer.num_workers=2"], "does not split evenly"),
        (["model.tiny.n_positions=64"], "exceeds model.tiny.n_positions"),
        (["algo.gamma=2"], "algo.gamma: must be >= 0 and <= 1, got 2"),
        (["algo.cliprange=-1"], "algo.cliprange: must be > 0"),
        (["task.spec.tolerance=-5"], "task.spec.tolerance: must be > 0"),
        (["task=gsm8k", "task.spec.source=hubb"], "task.spec.source: got 'hubb' (valid: auto, hub, local)"),
        (["task=gsm8k", "task.spec.isolation=bogus"], "task.spec.isolation: got 'bogus'"),
        (["trainer.resume=/nope"], "trainer.resume: /nope does not exist"),
        (["task=gsm8k", "task.spec.source=local", "task.spec.local_dir=/nope"], "task.spec.local_dir: /nope"),
        (["task=triviaqa", "task.spec.corpus=/nope.jsonl"], "task.spec.corpus: /nope.jsonl does not exist"),
        (["algo=grpo", "algo.group_size=5"], "not whole groups of algo.group_size=5"),
        (["+task.env.foo=1"], "task.env.foo: unknown key"),
    ],
)
def test_bad_input_names_the_key(overrides, expected):
    message = check_overrides(overrides)
    assert message is not None and expected in message, message


def _schema_leaves(node, prefix=""):
    """(dotted key, field metadata, value) of every schema field below ``node``."""
    schema = OmegaConf.get_type(node)
    metas = {f.name: (f.metadata, f.type) for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    for key in node.keys():
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(value)):
            yield from _schema_leaves(value, f"{prefix}{key}.")
        elif key in metas:
            yield f"{prefix}{key}", metas[key][0], value


def _bad_value(meta, value):
    """A value outside the field's range or choices, or of the wrong type."""
    if "choices" in meta:
        return "not-a-choice"
    for bound, bad in (("ge", lambda b: b - 1), ("gt", lambda b: b), ("le", lambda b: b + 1), ("lt", lambda b: b)):
        if bound in meta:
            return bad(meta[bound])
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, (int, float)):
        return "abc"
    return None


def every_key_with_a_bad_value():
    cases = []
    for group, options in GROUPS.items():
        if group in ("experiment", "hparams"):
            continue
        for option in options:
            cfg = make_cfg([f"{group}={option}", *REQUIRED.get((group, option), [])])
            node = cfg
            for key, meta, value in _schema_leaves(node):
                bad = _bad_value(meta, value)
                top = key.split(".")[0]
                if bad is None or (top != group and top in GROUPS):
                    continue
                if group == "sweep" and not key.startswith("sweep."):
                    continue
                cases.append(([f"{group}={option}", *REQUIRED.get((group, option), [])], key, bad))
    unique = {(tuple(o), k): (o, k, b) for o, k, b in cases}
    return sorted(unique.values(), key=lambda c: (c[1], c[0]))


BAD_KEYS = every_key_with_a_bad_value()
BY_OPTION: dict[tuple[str, ...], list[tuple[str, object]]] = {}
for _option, _key, _bad in BAD_KEYS:
    BY_OPTION.setdefault(tuple(_option), []).append((_key, _bad))


def test_the_walk_covers_every_group():
    keys = {k for _, k, _ in BAD_KEYS}
    for prefix in ("trainer.", "algo.", "task.spec.", "task.env.", "task.tools.", "model.", "model.tiny.", "logger.",
                   "sweep.", "ray.", "seed"):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert len(BAD_KEYS) > 100


@pytest.mark.parametrize("option", sorted(BY_OPTION), ids=lambda o: o[0])
def test_every_key_refuses_a_bad_value(option):
    """Each key of each group option, set to a value outside its range, choices or type, is refused
    with a message naming it (as check_overrides does, without composing once per key)."""
    from omegaconf.errors import ValidationError

    from orchestrator.config.checks import collect_problems

    base = make_cfg(list(option))
    passed = []
    for key, bad in BY_OPTION[option]:
        cfg = base.copy()
        try:
            OmegaConf.update(cfg, key, bad, merge=True)
        except ValidationError as err:
            assert key in str(err.full_key) or key.startswith(str(err.full_key)), (key, err)
            continue
        problems, _ = collect_problems(cfg, check_environment=False)
        if not any(p.startswith(key + ":") or f"{key}:" in p for p in problems):
            passed.append(f"{key}={bad!r} -> {problems}")
    assert not passed, "accepted:\n" + "\n".join(passed)


def test_gpu_request_without_gpu_is_explained():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="trainer.use_gpu"):
        check(make_cfg(["trainer.use_gpu=true"]))
    # joining a cluster: the driver's own device does not matter (checked once connected)
    check(make_cfg(["trainer.use_gpu=true", "ray.address=auto"]))


YAML_FILES = sorted(p for p in CONF_DIR.rglob("*.yaml"))


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(CONF_DIR)) for p in YAML_FILES])
def test_every_yaml_key_has_a_comment(path):
    lines = path.read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z_][\w.-]*):", line)
        if not match or line.strip().startswith("-") or match.group(2) in ("defaults", "hydra"):
            continue
        if lines and any(l.startswith("hydra:") for l in lines[:i]) and not match.group(1) == "":
            continue  # Hydra's own keys
        above = lines[i - 1].strip() if i else ""
        if line.rstrip().endswith(":"):
            continue  # a block (spec:, env:): its keys carry the comments
        if not above.startswith("#"):
            missing.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert not missing, "keys without a comment above them:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", [p for p in YAML_FILES if p.parent.name not in ("experiment", "hparams")],
                         ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_no_group_reads_another_groups_keys(path):
    """Interpolations in a group's file may read only top-level run keys (seed, cache_dir), never another group."""
    found = re.findall(r"\$\{([^}]+)\}", path.read_text())
    own = path.parent.name
    if path.name == "config.yaml":
        return
    foreign = [f for f in found if f.split(".")[0].split(":")[-1] in GROUPS and f.split(".")[0] != own]
    assert not foreign, f"{path.name} reads {foreign}"


def test_help_lists_groups_and_options():
    out = subprocess.run([sys.executable, "-m", "orchestrator", "--help"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0
    for group, options in GROUPS.items():
        assert f"{group}: " in out.stdout and all(o in out.stdout for o in options)


def test_cli_error_is_one_message_not_a_traceback_and_writes_nothing(tmp_path):
    for bad in ("trainer.max_step=3", "algo.gamma=2", "trainer.resume=/nope"):
        out = subprocess.run([sys.executable, "-m", "orchestrator", bad, f"output_dir={tmp_path}/run"],
                             capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr and bad.split("=")[0].replace("max_step", "max_steps") in out.stderr
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_an_rl_run_takes_trainer_max_steps_whatever_its_update_passes(algo):
    """Only SFT counts its steps in passes over demonstrations; an RL run's passes over each batch
    (GRPO once called them ``epochs``) must not turn max_steps=2 into a 900-step run."""
    from orchestrator.config.checks import check
    from orchestrator.config.derive import derive

    typed = check(make_cfg(["task=calculator", f"algo={algo}", "trainer.max_steps=2"]))
    assert derive(typed, 2.0, demonstrations=60_000).max_steps == 2
    sft = check(make_cfg(["task=calculator", "algo=sft", "algo.epochs=1", "trainer.batch_size=64"]))
    assert derive(sft, 2.0, demonstrations=640).max_steps == 10


@pytest.mark.parametrize("trials,workers", [(1, 1), (1, 2), (2, 1), (3, 1), (2, 2)])
def test_a_sweep_trials_workers_fit_beside_the_trial_coordinators(trials, workers):
    """A trial's coordinator holds TRIAL_CPU; its workers must fit in what is left, also when one
    trial runs at a time (asking for the whole cluster, 2.0 CPUs beside a coordinator's 0.01,
    left the worker group waiting forever)."""
    from orchestrator.config.checks import check
    from orchestrator.config.derive import derive
    from orchestrator.launch.sweep import TRIAL_CPU

    typed = check(make_cfg(["task=calculator", f"trainer.num_workers={workers}"]))
    cpus = derive(typed, 2.0, sweep_trials=trials).cpus_per_worker
    assert cpus > 0
    assert trials * (TRIAL_CPU + workers * cpus) <= 2.0 + 1e-9
    alone = derive(typed, 2.0).cpus_per_worker  # a run on its own has no coordinator beside it
    assert alone * workers == 2.0
