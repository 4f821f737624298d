"""Measure, from inside, the isolation a pool's sandbox really gives, and say it loudly.

The report is built from what a probe program *observes* when run as untrusted code
(which uid it has, whether it can connect anywhere, which host files and variables it can
read), not from what the launch flags intended. Every property that fails is logged as an
error, and the whole report is kept on the pool (``SandboxPool.isolation``) so the caller
can put it in the W&B config.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.tools.sandbox.launch import SANDBOX_ENV, bwrap_path

if TYPE_CHECKING:
    from orchestrator.tools.sandbox.pool import SandboxPool

log = logging.getLogger(__name__)

# Properties a fully isolated sandbox has; each is a bool in the report.
PROPERTIES = (
    "unprivileged_uid", "no_new_privs", "network_isolated", "pid_namespace", "env_cleared",
    "host_files_hidden", "readonly_system", "tmp_private", "rlimits", "seccomp",
)

_PROBE = r"""
import errno, json, os, resource
r = {"uid": os.getuid(), "pid": os.getpid(), "env": sorted(os.environ), "tmp": os.listdir(".")}
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
r["cap_eff"] = status.get("CapEff", "").strip()
r["no_new_privs"] = status.get("NoNewPrivs", "").strip()
r["seccomp"] = status.get("Seccomp", "").strip()
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r["unshare_denied"] = libc.unshare(0x10000000) != 0  # CLONE_NEWUSER
r["ptrace_denied"] = libc.ptrace(16, 1, 0, 0) != 0  # PTRACE_ATTACH to the zygote
r["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
def connect(addr):
    try:
        import socket
    except ImportError as e:
        return "no socket module: " + str(e)
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(addr)
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, type(e).__name__)
    finally:
        s.close()
r["interfaces"] = [l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]]
# Only where no host interface is visible: never send real traffic from a machine's own network.
r["net"] = {"loopback": connect(("127.0.0.1", PORT))}
r["net"]["outside"] = connect(("192.0.2.1", 9)) if set(r["interfaces"]) <= {"lo"} else "not tried: host interfaces visible"
def readable(p):
    try:
        with open(p, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False
r["leaked"] = [p for p in FILES if readable(p)]
def writable(d):
    try:
        with open(os.path.join(d, ".probe"), "w"):
            return True
    except OSError:
        return False
r["writable"] = [d for d in WRITE_DIRS if writable(d)]
r["rlimits"] = {n: resource.getrlimit(getattr(resource, n))[0] for n in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE")}
print(json.dumps(r))
"""


def _sensitive_files() -> list[str]:
    """Host files that exist here and that no sandboxed program may read."""
    home = Path.home()
    project = Path(__file__).resolve().parents[3]
    candidates = [
        Path("/etc/shadow"), Path("/etc/passwd"), Path("/etc/hostname"), home / ".netrc", home / ".bashrc",
        home / ".profile", home / ".gitconfig", home / ".ssh" / "id_rsa", home / ".cache" / "huggingface" / "token",
        project / "pyproject.toml", Path(__file__).resolve(),
    ]
    return [str(p) for p in candidates if p.is_file()]


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
    port = listener.getsockname()[1]
    write_dirs = ["/", "/usr", "/etc", "/dev", "/proc", os.path.dirname(os.path.realpath(pool.config.python))]
    code = f"PORT = {port}\nFILES = {_sensitive_files()!r}\nWRITE_DIRS = {write_dirs!r}\n" + _PROBE
    try:
        result = pool.run(code, timeout_s=10.0)
        try:
            listener.accept()
            reached_listener = True
        except BlockingIOError:
            reached_listener = False
    finally:
        listener.close()
    if not result.ok:
        report = {"mode": pool.mode, "full": False, "gaps": ["probe_failed"], "probe_error": (result.error or result.stderr)[-500:]}
        log.error("SANDBOX ISOLATION UNKNOWN: the isolation probe failed: %s", report["probe_error"])
        return report
    seen = json.loads(result.stdout)
    limits = pool.limits
    uid_outside = pool.worker_uids()[0]
    checks = {
        "unprivileged_uid": uid_outside != 0 and seen["uid"] != 0 and int(seen["cap_eff"] or "0", 16) == 0,
        "no_new_privs": seen["no_new_privs"] == "1",
        "network_isolated": not reached_listener and set(seen["interfaces"]) <= {"lo"} and "connected" not in seen["net"].values(),
        "pid_namespace": 1 in seen["pids"] and max(seen["pids"]) < 1000 and len(seen["pids"]) <= 3,
        "env_cleared": set(seen["env"]) <= set(SANDBOX_ENV) | {"HOME", "TMPDIR", "PWD"},
        "host_files_hidden": not seen["leaked"],
        "readonly_system": not seen["writable"],
        "tmp_private": seen["tmp"] == [],
        "rlimits": seen["rlimits"]["RLIMIT_AS"] == limits.memory_bytes
        and seen["rlimits"]["RLIMIT_NPROC"] == limits.max_processes
        and seen["rlimits"]["RLIMIT_FSIZE"] == limits.file_size_bytes,
        "seccomp": seen["seccomp"] == "2" and seen["unshare_denied"] and seen["ptrace_denied"],
    }
    gaps = [name for name in PROPERTIES if not checks[name]]
    report: dict[str, Any] = {
        "mode": pool.mode,
        "full": not gaps,
        "gaps": gaps,
        **checks,
        "uid_inside": seen["uid"],
        "uid_outside": uid_outside,
        "bwrap": bwrap_version(),
        "leaked_files": seen["leaked"],
        "writable_dirs": seen["writable"],
        "network": seen["net"],
        "limits": {k: v for k, v in limits.__dict__.items()},
        "workers": pool.size,
    }
    if gaps:
        log.error(
            "SANDBOX ISOLATION IS WEAKER THAN FULL (mode %s): missing %s. Untrusted programs here can %s.",
            pool.mode, ", ".join(gaps), _consequences(gaps),
        )
    else:
        log.info("sandbox isolation: full (mode %s, uid %s outside, %d workers)", pool.mode, uid_outside, pool.size)
    return report


def _consequences(gaps: list[str]) -> str:
    words = {
        "unprivileged_uid": "run as root (no process limit)",
        "no_new_privs": "gain rights through setuid binaries",
        "network_isolated": "reach the network, loopback services included",
        "pid_namespace": "see and signal host processes of their uid",
        "env_cleared": "read some host environment variables",
        "host_files_hidden": "read host files",
        "readonly_system": "write to system directories",
        "tmp_private": "see other runs' temporary files",
        "rlimits": "exceed the configured resource limits",
        "seccomp": "use every syscall (new namespaces, ptrace, bpf, io_uring)",
    }
    return "; ".join(words[g] for g in gaps)
