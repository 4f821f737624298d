"""Measure, from inside, the isolation a pool's sandbox really gives, and say it loudly.

The report is built from what a probe program *observes* when run as untrusted code, set
against secrets the trainer plants for it just before (:class:`Canaries`): a canary process
of the trainer's uid whose command line and environment carry random tokens, a world-
readable file with a token in the host's temporary directory, the trainer's own
environment, the project's files and a listener on the host's loopback. A layer counts as
holding only when the probe saw evidence for it (a missing observation is a gap), and
:func:`assess` is a pure function of the observation, so tests feed it crafted ones.

Every gap is logged as an error; the whole report is kept on the pool
(``SandboxPool.isolation``) for the run's config.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.tools.sandbox.launch import SANDBOX_ENV, bwrap_path

if TYPE_CHECKING:
    from orchestrator.tools.sandbox.pool import SandboxPool

log = logging.getLogger(__name__)

# Properties a fully isolated sandbox has; each is a bool in the report.
PROPERTIES = (
    "unprivileged_uid", "no_new_privs", "network_isolated", "pid_namespace", "ipc_namespace", "env_cleared",
    "host_files_hidden", "readonly_system", "tmp_private", "rlimits", "seccomp", "memory_total",
)
NAMESPACES = ("pid", "net", "ipc", "mnt", "uts")
PROJECT = Path(__file__).resolve().parents[3]

_PROBE = (Path(__file__).with_name("probe_inside.py")).read_text()


@dataclass
class Canaries:
    """What the trainer plants for the probe to look for (host side)."""

    trainer_pid: int
    trainer_uid: int
    trainer_environ_hash: int
    canary_pid: int
    cmd_token: str
    env_token: str
    tmp_file: str
    tmp_token: str
    port: int
    namespaces: dict[str, str]
    files: list[str] = field(default_factory=list)
    project: str = str(PROJECT)

    def program(self, write_dirs: list[str]) -> str:
        """The probe program with what it must look for."""
        params = {
            "TRAINER_PID": self.trainer_pid, "TRAINER_ENV_HASH": self.trainer_environ_hash, "CANARY_PID": self.canary_pid,
            "CMD_TOKEN": self.cmd_token, "ENV_TOKEN": self.env_token, "TMP_FILE": self.tmp_file, "TMP_TOKEN": self.tmp_token,
            "PORT": self.port, "FILES": self.files, "PROJECT": self.project, "WRITE_DIRS": write_dirs,
            "NAMESPACES": list(NAMESPACES),
        }
        return f"P = {json.dumps(params)!r}\n" + _PROBE


def fnv1a(data: bytes) -> int:
    """The hash probe_inside.py computes (it cannot count on hashlib being importable)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _sensitive_files() -> list[str]:
    """Host files that exist here and that no sandboxed program may read."""
    home = Path.home()
    candidates = [
        Path("/etc/shadow"), Path("/etc/passwd"), Path("/etc/hostname"), home / ".netrc", home / ".bashrc",
        home / ".profile", home / ".gitconfig", home / ".ssh" / "id_rsa", home / ".cache" / "huggingface" / "token",
        PROJECT / "pyproject.toml", PROJECT / "README.md", Path(__file__).resolve(),
    ]
    return [str(p) for p in candidates if _is_file(p)]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a directory we may not enter: not a file the probe can check
        return False


def host_namespaces() -> dict[str, str]:
    out = {}
    for name in NAMESPACES:
        with contextlib.suppress(OSError):
            out[name] = os.readlink(f"/proc/self/ns/{name}")
    return out


@contextlib.contextmanager
def planted_canaries(port: int) -> Iterator[Canaries]:
    """Plant the canaries for one probe run and remove them after it."""
    cmd_token, env_token, tmp_token = (secrets.token_hex(12) for _ in range(3))
    # A process of the trainer's uid, like the trainer: its argv and environment hold tokens.
    canary = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", "import sys; sys.stdin.read()", cmd_token],
        stdin=subprocess.PIPE, env={"TOOLRL_PROBE_CANARY": env_token}, close_fds=True,
    )
    fd, tmp_file = tempfile.mkstemp(prefix="toolrl-probe-canary-")
    try:
        os.write(fd, tmp_token.encode())
        os.close(fd)
        os.chmod(tmp_file, 0o644)  # world-readable: only the mount namespace may hide it
        with open("/proc/self/environ", "rb") as f:
            environ_hash = fnv1a(f.read())
        yield Canaries(
            trainer_pid=os.getpid(), trainer_uid=os.getuid(), trainer_environ_hash=environ_hash, canary_pid=canary.pid,
            cmd_token=cmd_token, env_token=env_token, tmp_file=tmp_file, tmp_token=tmp_token, port=port,
            namespaces=host_namespaces(), files=_sensitive_files(),
        )
    finally:
        canary.stdin.close()  # type: ignore[union-attr]
        try:
            canary.wait(timeout=5)
        except subprocess.TimeoutExpired:
            canary.kill()
            canary.wait()
        with contextlib.suppress(OSError):
            os.unlink(tmp_file)


def _namespaces_differ(seen: dict[str, Any], host: dict[str, str], name: str) -> bool:
    inside = (seen.get("ns") or {}).get(name)
    return bool(inside) and name in host and inside != host[name]


def assess(seen: dict[str, Any], canaries: Canaries, *, uid_outside: int, reached_listener: bool,
           limits: Any, zygote: dict[str, Any]) -> dict[str, bool]:
    """Which layers held, judged from the probe's observation ``seen`` alone (pure)."""
    host = canaries.namespaces
    net = seen.get("net") or {}
    rl = seen.get("rlimits") or {}
    caps = seen.get("cap_eff") or ""
    return {
        # Not root, no capability, and not the trainer's own uid (whose files and processes
        # would be the program's to read and signal where another layer slips).
        "unprivileged_uid": seen.get("uid") not in (None, 0) and caps != "" and int(caps, 16) == 0
        and uid_outside not in (0, canaries.trainer_uid),
        "no_new_privs": seen.get("no_new_privs") == "1",
        "network_isolated": not reached_listener and bool(seen.get("interfaces")) and set(seen["interfaces"]) <= {"lo"}
        and bool(net) and "connected" not in net.values() and _namespaces_differ(seen, host, "net"),
        # Another PID namespace, and the trainer's canary process invisible in it (a small
        # namespace alone proves nothing: a fresh container has small pids too).
        "pid_namespace": _namespaces_differ(seen, host, "pid") and seen.get("cmd_token_seen") is False,
        "ipc_namespace": _namespaces_differ(seen, host, "ipc"),
        # The program's own environment is ours, and no environment of the trainer's uid
        # (the canary's, the trainer's own) can be read from inside.
        "env_cleared": "env" in seen and set(seen["env"]) <= set(SANDBOX_ENV) | {"HOME", "TMPDIR", "PWD"}
        and seen.get("env_token_seen") is False and seen.get("trainer_env_seen") is False,
        "host_files_hidden": seen.get("leaked") == [] and seen.get("tmp_canary_read") is False
        and seen.get("project_visible") is False,
        "readonly_system": seen.get("writable") == [],
        "tmp_private": seen.get("tmp") == [],
        "rlimits": rl.get("RLIMIT_AS") == limits.memory_bytes and rl.get("RLIMIT_NPROC") == limits.max_processes
        and rl.get("RLIMIT_FSIZE") == limits.file_size_bytes,
        "seccomp": seen.get("seccomp") == "2" and seen.get("unshare_denied") is True and seen.get("ptrace_denied") is True
        and seen.get("sysv_denied") is True,
        # Enforced by the zygote, the sandbox's init (its ready report), tested in test_sandbox.
        "memory_total": zygote.get("memory_watch") is True,
    }


def bwrap_version() -> str | None:
    path = bwrap_path()
    if path is None:
        return None
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def probe_pool(pool: "SandboxPool") -> dict[str, Any]:
    """Run the probe in ``pool`` and return (and log) the isolation report."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    write_dirs = ["/", "/usr", "/etc", "/dev", "/proc", os.path.dirname(os.path.realpath(pool.config.python))]
    try:
        with planted_canaries(listener.getsockname()[1]) as canaries:
            result = pool.run(canaries.program(write_dirs), timeout_s=10.0)
        try:
            listener.accept()
            reached_listener = True
        except BlockingIOError:
            reached_listener = False
    finally:
        listener.close()
    base = {"isolation": pool.config.isolation, "mode": pool.mode}
    try:
        seen = json.loads(result.stdout) if result.ok else None
    except json.JSONDecodeError:
        seen = None
    if seen is None:
        report = {**base, "full": False, "gaps": ["probe_failed"], "probe_error": (result.error or result.stderr)[-500:]}
        log.error("SANDBOX ISOLATION UNKNOWN: the isolation probe failed: %s", report["probe_error"])
        return report
    uid_outside = pool.worker_uids()[0]
    zygote = pool.worker_info()[0]
    checks = assess(seen, canaries, uid_outside=uid_outside, reached_listener=reached_listener, limits=pool.limits, zygote=zygote)
    gaps = [name for name in PROPERTIES if not checks[name]]
    report: dict[str, Any] = {
        **base, "full": not gaps, "gaps": gaps, **checks,
        "uid_inside": seen.get("uid"), "uid_outside": uid_outside, "trainer_uid": canaries.trainer_uid,
        "bwrap": bwrap_version(), "leaked_files": seen.get("leaked"), "writable_dirs": seen.get("writable"),
        "network": seen.get("net"), "limits": dict(pool.limits.__dict__), "workers": pool.size,
    }
    if gaps:
        log.error(
            "SANDBOX ISOLATION IS WEAKER THAN FULL (isolation=%s, mode %s): missing %s. Untrusted programs here can %s.",
            pool.config.isolation, pool.mode, ", ".join(gaps), _consequences(gaps),
        )
    else:
        log.info("sandbox isolation: full (mode %s, uid %s outside, %d workers)", pool.mode, uid_outside, pool.size)
    return report


def _consequences(gaps: list[str]) -> str:
    words = {
        "unprivileged_uid": "run as root or as the trainer's own uid",
        "no_new_privs": "gain rights through setuid binaries",
        "network_isolated": "reach the network, loopback services included",
        "pid_namespace": "see and signal host processes",
        "ipc_namespace": "share System V IPC objects with the host",
        "env_cleared": "read host environment variables (the trainer's secrets)",
        "host_files_hidden": "read host files",
        "readonly_system": "write to system directories",
        "tmp_private": "see other runs' temporary files",
        "rlimits": "exceed the configured resource limits",
        "seccomp": "use every syscall (new namespaces, ptrace, bpf, io_uring, SysV IPC)",
        "memory_total": "use memory_bytes in each of many processes",
    }
    return "; ".join(words[g] for g in gaps)
