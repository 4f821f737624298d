"""Isolation settings and their check: full is the default and fails closed, weaker settings
must be named and warn at every start, and the isolation report never flatters.

Where this machine cannot give full isolation these tests FAIL (see tests/test_sandbox.py);
TOOLRL_SANDBOX_ALLOW_WEAK=1 skips those that need it, for developers only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.tools.python_interpreter import PythonInterpreter
from orchestrator.tools.sandbox import (
    ISOLATION_MODES, IsolationUnavailable, SandboxConfig, SandboxLimits, SandboxPool, isolation_problem,
)
from orchestrator.tools.sandbox import isolation as isolation_module
from orchestrator.tools.sandbox.probe import PROPERTIES, Canaries, assess

REPO = Path(__file__).resolve().parents[1]
ALLOW_WEAK = "TOOLRL_SANDBOX_ALLOW_WEAK"


def require_full_isolation() -> None:
    problem = isolation_problem("full")
    if problem is None:
        return
    if os.environ.get(ALLOW_WEAK) == "1":
        pytest.skip(f"{ALLOW_WEAK}=1, so isolation is not tested here: {problem}")
    pytest.fail(f"{problem} (the suite needs full isolation; a developer without it may set {ALLOW_WEAK}=1)", pytrace=False)


@pytest.fixture
def no_bwrap_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """This process as on a machine without bubblewrap (PATH holds no bwrap)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    isolation_module._environment_problem.cache_clear()
    yield
    isolation_module._environment_problem.cache_clear()


# ---------------------------------------------------------------------------- the setting
@pytest.mark.parametrize("bad", ["auto", "bwrap", "bogus", "", None, "FULL"])
def test_unknown_settings_are_refused_with_the_valid_ones(bad: object) -> None:
    problem = isolation_problem(bad)  # type: ignore[arg-type]
    assert problem is not None and "\n" not in problem
    assert all(mode in problem for mode in ISOLATION_MODES), problem
    with pytest.raises(ValueError, match="valid: full, userns, rlimits, none"):
        SandboxConfig(isolation=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid: full"):
        PythonInterpreter(isolation=bad)  # type: ignore[arg-type]


def test_full_is_the_default() -> None:
    assert SandboxConfig().isolation == "full"
    require_full_isolation()
    assert PythonInterpreter().config.isolation == "full"


def test_check_is_fast_and_starts_nothing() -> None:
    """The lead's config check calls it before Ray: no pool, no process left behind."""
    require_full_isolation()
    isolation_module._environment_problem.cache_clear()
    before = set(os.listdir("/proc"))
    start = time.monotonic()
    assert isolation_problem("full") is None
    assert time.monotonic() - start < 2.0
    start = time.monotonic()
    assert isolation_problem("full") is None  # cached
    assert time.monotonic() - start < 0.01
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    assert not (set(children) - before), "the check left a child process"


def test_missing_bubblewrap_is_one_line_saying_how_to_install(no_bwrap_on_path: None) -> None:
    problem = isolation_problem("full")
    if os.geteuid() != 0:
        assert problem is not None and "needs root" in problem
        return
    assert problem is not None and "\n" not in problem
    assert "bubblewrap" in problem and "apt-get install -y bubblewrap" in problem, problem
    with pytest.raises(IsolationUnavailable, match="apt-get install -y bubblewrap"):
        SandboxPool(SandboxConfig(num_workers=1))
    with pytest.raises(IsolationUnavailable, match="bubblewrap"):
        PythonInterpreter()
    # Weaker settings named explicitly still start, without bubblewrap.
    assert isolation_problem("rlimits") is None and isolation_problem("none") is None


def test_forbidden_namespaces_are_found_by_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bubblewrap that cannot create namespaces (a locked-down container) is refused up front."""
    if os.geteuid() != 0:
        pytest.skip("checks the root path of isolation=full")
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    isolation_module._environment_problem.cache_clear()
    try:
        problem = isolation_problem("full")
    finally:
        isolation_module._environment_problem.cache_clear()
    assert problem is not None and "\n" not in problem
    assert "Operation not permitted" in problem and "--privileged" in problem, problem


@pytest.mark.parametrize("mode", ["rlimits", "none"])
def test_weaker_settings_warn_at_every_start(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="orchestrator.tools.sandbox"):
        for _ in range(2):
            with SandboxPool(SandboxConfig(num_workers=1, isolation=mode), SandboxLimits(timeout_s=10), probe=False) as pool:
                assert pool.run("print(6 * 7)").stdout == "42\n"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and f"isolation={mode}" in r.getMessage()]
    assert len(warnings) == 2 and all("WEAKER THAN FULL" in w for w in warnings), warnings


def test_full_refuses_when_its_probe_finds_a_gap() -> None:
    """`full` means every layer checked from inside: without seccomp the pool does not start."""
    require_full_isolation()
    with pytest.raises(IsolationUnavailable, match="probe found layers that do not hold here: seccomp"):
        SandboxPool(SandboxConfig(num_workers=1, seccomp=False))


def test_full_report_checked_every_layer() -> None:
    require_full_isolation()
    with SandboxPool(SandboxConfig(num_workers=1), SandboxLimits(timeout_s=10)) as pool:
        report = pool.isolation
    assert report["full"] and report["gaps"] == [], report
    assert all(report[name] is True for name in PROPERTIES)
    assert report["uid_outside"] != report["trainer_uid"]


# ---------------------------------------------------------------------------- the report's judgement
def _canaries() -> Canaries:
    return Canaries(
        trainer_pid=4242, trainer_uid=1000, trainer_environ_hash=12345, canary_pid=4243, cmd_token="c" * 24,
        env_token="e" * 24, tmp_file="/tmp/toolrl-probe-canary-x", tmp_token="t" * 24, port=1,
        namespaces={"pid": "pid:[1]", "net": "net:[2]", "ipc": "ipc:[3]", "mnt": "mnt:[4]", "uts": "uts:[5]"},
    )


def _good_observation() -> dict:
    return {
        "uid": 3000000000, "cap_eff": "0000000000000000", "no_new_privs": "1", "seccomp": "2", "env": ["HOME", "PATH"],
        "tmp": [], "ns": {"pid": "pid:[11]", "net": "net:[12]", "ipc": "ipc:[13]", "mnt": "mnt:[14]", "uts": "uts:[15]"},
        "unshare_denied": True, "ptrace_denied": True, "sysv_denied": True, "cmd_token_seen": False,
        "env_token_seen": False, "trainer_env_seen": False, "interfaces": ["lo"],
        "net": {"loopback": "ECONNREFUSED", "outside": "ENETUNREACH"}, "leaked": [], "tmp_canary_read": False,
        "project_visible": False, "writable": [], "pids": 2,
        "rlimits": {"RLIMIT_AS": 512 << 20, "RLIMIT_NPROC": 8, "RLIMIT_FSIZE": 16 << 20},
    }


def _judge(seen: dict, uid_outside: int = 3000000000, **kw: object) -> dict[str, bool]:
    return assess(seen, _canaries(), uid_outside=uid_outside, reached_listener=False, limits=SandboxLimits(),
                  zygote={"memory_watch": True, **kw})


def test_assess_passes_a_fully_isolated_observation() -> None:
    assert all(_judge(_good_observation()).values())


@pytest.mark.parametrize(
    "change, gap",
    [
        # The trainer's own uid is not unprivileged, whatever it is.
        ({"uid_outside": 1000}, "unprivileged_uid"),
        ({"uid_outside": 0}, "unprivileged_uid"),
        # A small PID namespace proves nothing when the trainer's canary process is visible.
        ({"cmd_token_seen": True, "pids": 2}, "pid_namespace"),
        ({"ns": {"pid": "pid:[1]", "net": "net:[12]", "ipc": "ipc:[13]"}}, "pid_namespace"),
        # The program's own environment is clean but the canary's (trainer's uid) is readable.
        ({"env_token_seen": True}, "env_cleared"),
        ({"trainer_env_seen": True}, "env_cleared"),
        ({"tmp_canary_read": True}, "host_files_hidden"),
        ({"project_visible": True}, "host_files_hidden"),
        ({"ns": {"pid": "pid:[11]", "net": "net:[12]", "ipc": "ipc:[3]"}}, "ipc_namespace"),
        ({"sysv_denied": False}, "seccomp"),
    ],
)
def test_assess_does_not_flatter(change: dict, gap: str) -> None:
    seen = _good_observation()
    uid_outside = change.pop("uid_outside", 3000000000)
    seen.update(change)
    checks = _judge(seen, uid_outside=uid_outside)
    assert checks[gap] is False, checks
    assert all(v for k, v in checks.items() if k != gap), checks


@pytest.mark.parametrize("missing", ["cmd_token_seen", "env_token_seen", "ns", "sysv_denied", "tmp_canary_read", "interfaces"])
def test_a_missing_observation_is_a_gap(missing: str) -> None:
    seen = _good_observation()
    del seen[missing]
    assert not all(_judge(seen).values())


NON_ROOT_SCRIPT = """
import json
from orchestrator.tools.sandbox import SandboxConfig, SandboxLimits, SandboxPool
with SandboxPool(SandboxConfig(num_workers=1, isolation="rlimits"), SandboxLimits(timeout_s=10)) as pool:
    print(json.dumps(pool.isolation))
"""


def test_report_of_a_non_root_trainer_without_bubblewrap_is_honest() -> None:
    """As a non-root trainer with isolation=rlimits, programs run under the trainer's uid: the
    report must say so, and see that the trainer's processes and environments are readable."""
    if os.geteuid() != 0:
        pytest.skip("runs a trainer as uid 65534, which needs root")
    if not (Path("/usr/bin/python3").exists() and Path("/usr/bin/setpriv").exists()):
        pytest.skip("needs /usr/bin/python3 and setpriv to run as another user")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/tmp", "WANDB_API_KEY": "wandb-fake-0123456789"}
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", NON_ROOT_SCRIPT],
        capture_output=True, text=True, env=env, cwd="/", timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["uid_outside"] == report["trainer_uid"] == 65534
    assert report["unprivileged_uid"] is False  # the old probe called a non-root uid unprivileged
    assert report["env_cleared"] is False  # the canary of the trainer's uid was readable
    assert report["pid_namespace"] is False and report["full"] is False


# ---------------------------------------------------------------------------- the suite itself
def test_missing_isolation_fails_the_suite_unless_a_developer_opts_out(no_bwrap_on_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_WEAK, raising=False)
    with pytest.raises(pytest.fail.Exception, match="bubblewrap|needs root"):
        require_full_isolation()
    monkeypatch.setenv(ALLOW_WEAK, "1")
    with pytest.raises(pytest.skip.Exception, match=ALLOW_WEAK):
        require_full_isolation()


@pytest.mark.parametrize("opt_out", [False, True])
def test_sandbox_suite_on_a_machine_without_bubblewrap(tmp_path: Path, opt_out: bool) -> None:
    """tests/test_sandbox.py run where bwrap is not on PATH: it fails (never xfails), and only
    the developers' opt-out turns its isolation tests into skips."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != ALLOW_WEAK}
    env.update(PATH=str(bin_dir), PYTHONPATH=str(REPO))
    if opt_out:
        env[ALLOW_WEAK] = "1"
    tests = ["tests/test_sandbox.py::test_isolation_is_full_and_reported", "tests/test_sandbox.py::test_normal_program"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", *tests],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    if opt_out:
        assert done.returncode == 0 and "1 passed, 1 skipped" in done.stdout, done.stdout[-1500:]
    else:
        assert done.returncode == 1 and "xfail" not in done.stdout and "2 errors" in done.stdout, done.stdout[-1500:]
        assert "bubblewrap" in done.stdout or "needs root" in done.stdout
