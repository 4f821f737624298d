"""Which isolation a sandbox runs with, and whether this machine can give it.

Four settings (``SandboxConfig.isolation``, ``task.spec.isolation`` in a run's config):

- ``full`` (the default): bubblewrap with new mount, PID, network, IPC, UTS and cgroup
  namespaces, programs under a uid of their own (only root can give one), seccomp,
  ``no_new_privs``, rlimits and a limit on the memory of all of a run's processes together.
  Where any of it is missing the sandbox refuses to start: :func:`isolation_problem` says
  what is missing, in one line, and how to get it.
- ``userns``: the same bubblewrap for a trainer that is not root, but programs run under the
  trainer's own uid (mapped to 65534 inside): one layer fewer, so it must be named.
- ``rlimits``: no bubblewrap; a cleared environment, a private temporary directory, a dropped
  uid when root, rlimits, seccomp and the memory limit. Programs see the host's files,
  network and processes.
- ``none``: the wall-time limit and the output cap, nothing else.

Every setting but ``full`` logs a warning at every pool start (:func:`weak_mode_warning`).
The check is cheap (one bubblewrap start, ~20 ms, cached per process) and needs neither Ray
nor a pool, so a run's configuration check calls it before anything starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from orchestrator.tools.sandbox.seccomp import build_filter

ISOLATION_MODES = ("full", "userns", "rlimits", "none")
# How each setting starts a worker (the ``mode`` in the isolation report).
LAUNCHERS = {"full": "bwrap-root", "userns": "bwrap-userns", "rlimits": "rlimits", "none": "none"}
INSTALL_BWRAP = "install it: `apt-get install -y bubblewrap` (or `bash scripts/install.sh` as root)"
_WEAK = {
    "userns": "programs run under the trainer's own uid (mapped to 65534 inside bubblewrap)",
    "rlimits": "NO network, filesystem or PID isolation: programs see the host's files, network and processes",
    "none": "NO isolation and no resource limit but wall time and output: programs run as the trainer",
}


class IsolationUnavailable(RuntimeError):
    """The configured isolation cannot be given here; the message is the one line to show."""


def mode_problem(mode: object) -> str | None:
    """Why ``mode`` is not an isolation setting (None when it is one)."""
    if mode in ISOLATION_MODES:
        return None
    return f"isolation={mode!r} is not a sandbox isolation setting; valid: {', '.join(ISOLATION_MODES)} (docs/sandbox.md)"


def weak_mode_warning(mode: str) -> str | None:
    """The warning logged at every pool start in a weaker mode (None for ``full``)."""
    if mode not in _WEAK:
        return None
    return f"SANDBOX ISOLATION IS WEAKER THAN FULL (isolation={mode}): {_WEAK[mode]}. Use isolation=full where you can."


def isolation_problem(mode: str) -> str | None:
    """One line saying what ``mode`` lacks on this machine and how to get it; None if it can run.

    For ``full`` and ``userns`` this starts one throw-away bubblewrap with the namespaces a
    worker uses (so a container that forbids them is found here, not at the first program).
    """
    problem = mode_problem(mode)
    if problem is not None:
        return problem
    return _environment_problem(mode, os.geteuid())


@lru_cache(maxsize=8)
def _environment_problem(mode: str, euid: int) -> str | None:
    if mode in ("rlimits", "none"):
        return None
    if mode == "full" and euid != 0:
        return (
            f"isolation=full needs root: programs must run under a uid of their own, which only root can give "
            f"(this process is uid {euid}); run the tool actors as root, or name isolation=userns to run them "
            f"in bubblewrap under your own uid"
        )
    if mode == "userns" and euid == 0:
        return "isolation=userns would map programs to root outside the sandbox; as root use isolation=full"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"isolation={mode} needs bubblewrap, which is not installed: {INSTALL_BWRAP}"
    if build_filter() is None:
        return f"isolation={mode} needs seccomp, and the sandbox has no syscall table for this CPU ({os.uname().machine}; x86_64 and aarch64 only)"
    return _trial_problem(mode, bwrap)


def _trial_problem(mode: str, bwrap: str) -> str | None:
    """Start bubblewrap once with a worker's namespaces; why it failed, in one line."""
    from orchestrator.tools.sandbox.launch import namespace_args, system_binds

    true = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"
    argv = [bwrap, *namespace_args(LAUNCHERS[mode]), *system_binds(), "--proc", "/proc", "--dev", "/dev", "--", true]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as err:
        return f"isolation={mode}: bubblewrap ({bwrap}) could not be started: {err}"
    if done.returncode == 0:
        return None
    said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    if "Unknown option" in said or "unrecognized option" in said:
        return f"isolation={mode}: bubblewrap here is too old ({said}); the sandbox needs bubblewrap >= 0.8.0: {INSTALL_BWRAP}"
    if mode == "userns":
        hint = ("allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0; "
                "on Ubuntu 24.04+ kernel.apparmor_restrict_unprivileged_userns=0), or run as root with isolation=full")
    else:
        hint = ("in a container, allow namespaces (e.g. `docker run --privileged`, or "
                "`--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined`)")
    return f"isolation={mode}: bubblewrap cannot create the sandbox's namespaces here ({said}); {hint}"


__all__ = [
    "ISOLATION_MODES", "LAUNCHERS", "IsolationUnavailable", "isolation_problem", "mode_problem", "weak_mode_warning",
]
