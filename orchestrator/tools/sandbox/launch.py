"""Command lines that start one sandbox worker: bubblewrap around the zygote, or the fallback.

Three modes, picked by :func:`choose_mode`:

- ``bwrap-root`` (we are root): bubblewrap without a user namespace, with new PID, network,
  IPC, UTS and cgroup namespaces. The zygote keeps CAP_SETUID/CAP_SETGID just long enough to
  drop to a uid of its own (``uid_base + slot``), so RLIMIT_NPROC applies (it never applies
  to root, even inside a user namespace where root maps to host root).
- ``bwrap-userns`` (not root): bubblewrap in an unprivileged user namespace as uid 65534,
  which maps to our own uid outside; further user namespaces are disabled.
- ``rlimits`` (no bubblewrap, or it cannot start here): the zygote runs as a plain process
  with a cleared environment, a private temporary directory, a dropped uid when root, and
  the same rlimits. No network or filesystem isolation: :mod:`probe` says so, loudly.

Only ``/usr`` (and the merged-/usr links), the dynamic loader's cache and the interpreter's
own install tree are visible, read-only, at their host paths. Home, /etc, the project and
every other host path are simply absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from orchestrator.tools.sandbox.config import SandboxConfig
from orchestrator.tools.sandbox.seccomp import build_filter

ZYGOTE_SOURCE = (Path(__file__).with_name("zygote.py")).read_text()
# Environment of every sandboxed program. Nothing is inherited from the host.
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    # One thread per BLAS pool: threads count against RLIMIT_NPROC and idle cores are not ours.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
log = logging.getLogger(__name__)
SANDBOX_UID_USERNS = 65534  # the uid a program sees in bwrap-userns mode ("nobody")
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass
class WorkerSpec:
    """Everything needed to start one worker process, and what to remove after it."""

    argv: list[str]
    env: dict[str, str]
    mode: str
    uid: int
    cwd: str | None = None
    cleanup_dirs: list[str] = field(default_factory=list)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def choose_mode(cfg: SandboxConfig) -> str:
    """The strongest mode this machine can try for ``cfg`` (the probe then checks it works)."""
    if cfg.isolation == "none":
        return "rlimits"
    if bwrap_path() is None:
        if cfg.isolation == "bwrap":
            raise RuntimeError("isolation='bwrap' but bubblewrap is not installed (apt-get install bubblewrap)")
        return "rlimits"
    return "bwrap-root" if os.geteuid() == 0 else "bwrap-userns"


@lru_cache(maxsize=8)
def interpreter_layout(python: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Directories the sandbox needs to run ``python`` (its prefixes) and its site-packages.

    The interpreter runs with ``-S`` and the zygote puts the site-packages on ``sys.path``
    itself: no ``.pth`` file runs in the sandbox (they cost ~30-100 ms per start here, and an
    editable install's finder would point into the project).
    """
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import site

        roots, site_dirs = {sys.prefix, sys.base_prefix}, list(site.getsitepackages())
    else:
        out = subprocess.run(
            [python, "-I", "-c", "import json, site, sys; print(json.dumps([[sys.prefix, sys.base_prefix], site.getsitepackages()]))"],
            capture_output=True, text=True, check=True, timeout=30, env=SANDBOX_ENV,
        )
        prefixes, site_dirs = json.loads(out.stdout)
        roots = set(prefixes)
    roots.add(str(Path(os.path.realpath(python)).parent.parent))
    bound = tuple(sorted({_outside_usr(os.path.realpath(r)) for r in roots} - {""}))
    return bound, tuple(d for d in site_dirs if os.path.isdir(d))


def interpreter_roots(python: str) -> tuple[str, ...]:
    return interpreter_layout(python)[0]


def _world_readable(path: str) -> bool:
    """Whether any uid can walk down to ``path`` and list it."""
    p = Path(path)
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents]) and bool(os.stat(p).st_mode & 0o004)


def _outside_usr(path: str) -> str:
    """``path`` unless /usr (always bound) already holds it."""
    return "" if path == "/usr" or path.startswith("/usr/") else path


def _bind_tree(paths: tuple[str, ...]) -> list[str]:
    """bwrap args binding ``paths`` read-only at the same place, with traversable parents.

    bwrap would create missing parents itself, but as root-only directories: a dropped uid
    could not walk through them (``/root`` is the usual case).
    """
    args: list[str] = []
    made: set[str] = {"/"}
    for path in sorted(set(paths)):
        if any(path == done or path.startswith(done + "/") for done in paths if done != path):
            continue  # inside another bound tree
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", path, path]
    return args


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--perms", "0755", "--dir", "/etc", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def zygote_config(cfg: SandboxConfig, uid: int | None, tmp_dir: str, scratch_dirs: tuple[str, ...] = ()) -> str:
    seccomp = build_filter() if cfg.seccomp else None
    return json.dumps({
        "uid": uid, "tmp_dir": tmp_dir, "scratch_dirs": list(scratch_dirs), "preload": list(cfg.preload),
        "site_dirs": list(interpreter_layout(os.path.realpath(cfg.python))[1]),
        "max_tmp_entries": cfg.max_tmp_entries, "seccomp": seccomp.hex() if seccomp else None,
    })


def worker_spec(cfg: SandboxConfig, mode: str, slot: int, *, preload: bool = True) -> WorkerSpec:
    """How to start worker ``slot`` in ``mode`` (``preload=False`` for one-shot workers)."""
    if not preload:
        cfg = replace(cfg, preload=())
    python = os.path.realpath(cfg.python)
    is_root = os.geteuid() == 0
    drop_uid = cfg.uid_base + slot if is_root else None
    if mode == "rlimits":
        if drop_uid is not None and slot == 0:
            for root in interpreter_roots(python):
                if not _world_readable(root):
                    log.error(
                        "rlimits mode: the sandbox uid cannot enter %s (a parent is not world-traversable); "
                        "only modules the zygote preloads will import. Install bubblewrap.", root,
                    )
        tmp_dir = tempfile.mkdtemp(prefix="toolrl-sandbox-")
        if drop_uid is not None:
            os.chown(tmp_dir, drop_uid, drop_uid)
        os.chmod(tmp_dir, 0o700)
        env = dict(SANDBOX_ENV, HOME=tmp_dir, TMPDIR=tmp_dir)
        argv = [python, "-I", "-S", "-B", "-c", ZYGOTE_SOURCE, zygote_config(cfg, drop_uid, tmp_dir)]
        return WorkerSpec(argv, env, mode, drop_uid if drop_uid is not None else os.getuid(), cwd=tmp_dir, cleanup_dirs=[tmp_dir])

    bwrap = bwrap_path()
    if bwrap is None:
        raise RuntimeError("bubblewrap is not installed")
    args = [bwrap, "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if mode == "bwrap-root":
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        uid = drop_uid
    else:
        args += ["--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID_USERNS), "--gid", str(SANDBOX_UID_USERNS)]
        uid = os.getuid()
    args += _system_binds()
    args += _bind_tree(interpreter_roots(python) + tuple(os.path.realpath(p) for p in cfg.extra_ro_binds))
    args += ["--proc", "/proc", "--dev", "/dev"]
    # POSIX semaphores and shared memory (multiprocessing) need a writable /dev/shm: a small one.
    args += ["--perms", "1777", "--size", str(cfg.shm_size_bytes), "--tmpfs", "/dev/shm"]
    args += ["--perms", "1777", "--size", str(cfg.tmp_size_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    # / and /dev are bwrap's own tmpfs, without a size limit (and /dev is ours in a user
    # namespace): read-only, or writes there fill RAM. Device nodes stay usable.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    for key, value in dict(SANDBOX_ENV, HOME="/tmp", TMPDIR="/tmp").items():
        args += ["--setenv", key, value]
    args += ["--", python, "-I", "-S", "-B", "-c", ZYGOTE_SOURCE, zygote_config(cfg, drop_uid, "/tmp", ("/dev/shm",))]
    return WorkerSpec(args, {"PATH": "/usr/bin:/bin"}, mode, uid)
