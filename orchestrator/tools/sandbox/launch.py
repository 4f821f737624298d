"""Command lines that start one sandbox worker: bubblewrap around the zygote, or the fallbacks.

Four launchers, one per isolation setting (``isolation.LAUNCHERS``):

- ``bwrap-root`` (``full``; we are root): bubblewrap without a user namespace, with new PID,
  network, IPC, UTS and cgroup namespaces. The zygote keeps CAP_SETUID/CAP_SETGID just long
  enough to drop to a uid of its own (``uid_base + slot``), so RLIMIT_NPROC applies (it never
  applies to root, even inside a user namespace where root maps to host root).
- ``bwrap-userns`` (``userns``; not root): bubblewrap in an unprivileged user namespace as
  uid 65534, which maps to our own uid outside; further user namespaces are disabled.
- ``rlimits``: the zygote as a plain process with a cleared environment, a private temporary
  directory, a dropped uid when root, rlimits, seccomp and the memory watch.
- ``none``: a plain process with a cleared environment and a private temporary directory.

Only ``/usr`` (and the merged-/usr links), the dynamic loader's cache and the interpreter's
install tree are visible, read-only, at their host paths; site-packages that lie elsewhere
(a virtual environment inside the project, say) are bound at neutral paths under
``/sandbox``, so no parent directory of theirs (the project) appears. Home, /etc, the project
and every other host path are absent.
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
from orchestrator.tools.sandbox.isolation import INSTALL_BWRAP, LAUNCHERS
from orchestrator.tools.sandbox.seccomp import build_filter

_HERE = Path(__file__).parent
ZYGOTE_SOURCE = (_HERE / "zygote.py").read_text()
# Standard-library helpers the zygote loads from source (no project file is visible inside).
ZYGOTE_HELPERS = {name: (_HERE / f"{name}.py").read_text() for name in ("zygote_cleanup", "zygote_memory")}
# Where site-packages outside the bound trees appear inside the sandbox (one per directory).
SITE_MOUNT = "/sandbox/site-packages"
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


@dataclass(frozen=True)
class MountPlan:
    """What the sandbox binds for one interpreter.

    ``roots`` are bound read-only at their own paths (the interpreter's install tree, when it
    is not under /usr); ``site_binds`` are (host directory, path inside) pairs; ``sys_path``
    is what the zygote appends to ``sys.path`` inside (the paths as the sandbox sees them).
    """

    roots: tuple[str, ...]
    site_binds: tuple[tuple[str, str], ...]
    sys_path: tuple[str, ...]
    host_site_dirs: tuple[str, ...]


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def choose_mode(cfg: SandboxConfig) -> str:
    """The launcher of ``cfg.isolation`` (``isolation_problem`` says whether it can run here)."""
    return LAUNCHERS[cfg.isolation]


@lru_cache(maxsize=8)
def _interpreter_info(python: str) -> tuple[str, tuple[str, ...]]:
    """``python``'s base prefix (its install tree; a virtual environment's base interpreter)
    and its site-packages directories. ``python`` as given, not resolved: a virtual
    environment is known by the path its interpreter is started from."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        import site

        return sys.base_prefix, tuple(site.getsitepackages())
    out = subprocess.run(
        [python, "-I", "-c", "import json, site, sys; print(json.dumps([sys.base_prefix, site.getsitepackages()]))"],
        capture_output=True, text=True, check=True, timeout=30, env=SANDBOX_ENV,
    )
    base, site_dirs = json.loads(out.stdout)
    return base, tuple(site_dirs)


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def mount_plan(python: str) -> MountPlan:
    """The binds that run ``python`` in the sandbox with its site-packages importable.

    The interpreter runs with ``-S`` and the zygote puts the site-packages on ``sys.path``
    itself: no ``.pth`` file runs in the sandbox (they cost ~30-100 ms per start here, and an
    editable install's finder would point into the project). A virtual environment's own
    prefix is never bound: its interpreter is a link to the base one, and only its
    site-packages are needed, bound where no parent of theirs shows.
    """
    real = os.path.realpath(python)
    base, site_dirs = _interpreter_info(python)
    roots = {os.path.realpath(base)}
    if not any(_inside(real, r) for r in roots):  # an interpreter outside its own prefix
        roots.add(str(Path(real).parent.parent))
    roots = {r for r in roots if not _inside(r, "/usr") and r != "/"}
    bound = ("/usr", *roots)
    binds: list[tuple[str, str]] = []
    sys_path: list[str] = []
    host_dirs: list[str] = []
    for d in site_dirs:
        d = os.path.realpath(d)
        if not os.path.isdir(d) or d in host_dirs:
            continue
        host_dirs.append(d)
        if any(_inside(d, tree) for tree in bound):
            sys_path.append(d)
        else:
            inside = f"{SITE_MOUNT}/{len(binds)}"
            binds.append((d, inside))
            sys_path.append(inside)
    return MountPlan(tuple(sorted(roots)), tuple(binds), tuple(sys_path), tuple(host_dirs))


def _world_readable(path: str) -> bool:
    """Whether any uid can walk down to ``path`` and list it."""
    p = Path(path)
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents]) and bool(os.stat(p).st_mode & 0o004)


def _bind_tree(paths: tuple[str, ...]) -> list[str]:
    """bwrap args binding ``paths`` read-only at the same place, with traversable parents.

    bwrap would create missing parents itself, but as root-only directories: a dropped uid
    could not walk through them (``/root`` is the usual case).
    """
    args: list[str] = []
    made: set[str] = {"/"}
    for path in sorted(set(paths)):
        if any(path != done and _inside(path, done) for done in paths):
            continue  # inside another bound tree
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", path, path]
    return args


def system_binds() -> list[str]:
    """bwrap args for the system every program needs: /usr, its links, the loader's cache."""
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


def namespace_args(mode: str) -> list[str]:
    """bwrap's namespace and privilege flags for launcher ``mode`` (``bwrap-root``/``bwrap-userns``)."""
    args = ["--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if mode == "bwrap-root":
        return args + ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return args + ["--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID_USERNS), "--gid", str(SANDBOX_UID_USERNS)]


def zygote_config(cfg: SandboxConfig, mode: str, uid: int | None, tmp_dir: str, scratch_dirs: tuple[str, ...], sys_path: tuple[str, ...]) -> str:
    seccomp = build_filter() if cfg.seccomp and mode != "none" else None
    return json.dumps({
        "uid": uid, "tmp_dir": tmp_dir, "scratch_dirs": list(scratch_dirs), "preload": list(cfg.preload),
        "site_dirs": list(sys_path), "max_tmp_entries": cfg.max_tmp_entries, "seccomp": seccomp.hex() if seccomp else None,
        "rlimits": mode != "none", "memory_watch": mode != "none",
    })


def _zygote_argv(python: str, config: str) -> list[str]:
    return [python, "-I", "-S", "-B", "-c", ZYGOTE_SOURCE, config, json.dumps(ZYGOTE_HELPERS)]


def worker_spec(cfg: SandboxConfig, mode: str, slot: int, *, preload: bool = True) -> WorkerSpec:
    """How to start worker ``slot`` with launcher ``mode`` (``preload=False`` for one-shot workers)."""
    if not preload:
        cfg = replace(cfg, preload=())
    plan = mount_plan(cfg.python)
    python = os.path.realpath(cfg.python)
    drop_uid = cfg.uid_base + slot if os.geteuid() == 0 and mode != "none" else None
    if mode in ("rlimits", "none"):
        if drop_uid is not None and slot == 0:
            for root in (*plan.roots, *plan.host_site_dirs):
                if not _world_readable(root):
                    log.error(
                        "isolation=rlimits: the sandbox uid cannot enter %s (a parent is not world-traversable); "
                        "only modules the zygote preloads will import", root,
                    )
        tmp_dir = tempfile.mkdtemp(prefix="toolrl-sandbox-")
        if drop_uid is not None:
            os.chown(tmp_dir, drop_uid, drop_uid)
        os.chmod(tmp_dir, 0o700)
        env = dict(SANDBOX_ENV, HOME=tmp_dir, TMPDIR=tmp_dir)
        argv = _zygote_argv(python, zygote_config(cfg, mode, drop_uid, tmp_dir, (), plan.host_site_dirs))
        return WorkerSpec(argv, env, mode, drop_uid if drop_uid is not None else os.getuid(), cwd=tmp_dir, cleanup_dirs=[tmp_dir])

    bwrap = bwrap_path()
    if bwrap is None:
        raise RuntimeError(f"bubblewrap is not installed: {INSTALL_BWRAP}")
    args = [bwrap, *namespace_args(mode)]
    uid = drop_uid if mode == "bwrap-root" else os.getuid()
    args += system_binds()
    args += _bind_tree(plan.roots + tuple(os.path.realpath(p) for p in cfg.extra_ro_binds))
    if plan.site_binds:  # parents bwrap would make root-only, so a dropped uid could not enter
        args += ["--perms", "0755", "--dir", str(Path(SITE_MOUNT).parent), "--perms", "0755", "--dir", SITE_MOUNT]
    for host, inside in plan.site_binds:
        args += ["--ro-bind", host, inside]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # POSIX semaphores and shared memory (multiprocessing) need a writable /dev/shm: a small one.
    args += ["--perms", "1777", "--size", str(cfg.shm_size_bytes), "--tmpfs", "/dev/shm"]
    args += ["--perms", "1777", "--size", str(cfg.tmp_size_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    # / and /dev are bwrap's own tmpfs, without a size limit (and /dev is ours in a user
    # namespace): read-only, or writes there fill RAM. Device nodes stay usable.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    for key, value in dict(SANDBOX_ENV, HOME="/tmp", TMPDIR="/tmp").items():
        args += ["--setenv", key, value]
    config = zygote_config(cfg, mode, drop_uid if mode == "bwrap-root" else None, "/tmp", ("/dev/shm",), plan.sys_path)
    args += ["--", *_zygote_argv(python, config)]
    return WorkerSpec(args, {"PATH": "/usr/bin:/bin"}, mode, uid)
