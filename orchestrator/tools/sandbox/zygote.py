"""The sandbox's resident server: forks one child per program, enforces limits, cleans up.

This file runs *inside* the sandbox (``python -I -c <this source> <json config>``), so it
imports the standard library only and nothing from the project. Under bubblewrap it is
PID 1 of the sandbox's PID namespace, which is what makes it safe to share a uid with the
untrusted children: the kernel drops every signal sent to a namespace's init from inside
unless init installed a handler (we install none), and the zygote is made non-dumpable so
a child cannot ptrace it or open its pipes through /proc. Being PID 1 also lets it end a
run with ``kill(-1, SIGKILL)``, which reaches every process the run left behind, daemons
included, and nothing outside the namespace.

While a run lasts the zygote also adds up the memory of all its processes (``zygote_memory``)
and ends the run past ``memory_bytes``; after it, it empties the scratch directories and
removes SysV IPC objects (``zygote_cleanup``). Those two helpers come as source text in
``argv[2]`` (no project file is visible inside) and are loaded as modules at start.

Protocol on fds 0/1: frames of a 4-byte big-endian length and UTF-8 JSON. The zygote
sends one ``ready`` frame, then answers each request frame with one reply frame. EOF on
fd 0 ends it (and, as PID 1, everything in the namespace).
"""

import json
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback  # imported here: a child may lack the rights to import it later (rlimits mode)
import types

cleanup = memory = None  # the helper modules, loaded by main() from argv[2]

_LIMIT_MARKERS = (  # (text in the stderr tail, limit) for runs that failed on an rlimit
    ("MemoryError", "memory"),
    ("Cannot allocate memory", "memory"),
    ("can't start new thread", "processes"),
    ("[Errno 11] Resource temporarily unavailable", "processes"),
    ("[Errno 27] File too large", "file_size"),
    ("[Errno 28] No space left on device", "disk"),
)


_LIBC = []  # the C library's handle, loaded once: dlopen per call costs ~0.3 ms in each run


def _prctl(option, value):
    """Best effort prctl; returns False where ctypes is unavailable."""
    try:
        if not _LIBC:
            import ctypes

            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        return _LIBC[0].prctl(option, value, 0, 0, 0) == 0
    except Exception:  # noqa: BLE001 - reported in the ready frame instead
        return False


def _install_seccomp(hex_filter):
    """Load the parent's seccomp filter (raw sock_filter entries) on this process and its children."""
    if not hex_filter:
        return False
    try:
        import ctypes

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        prog = bytes.fromhex(hex_filter)
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
        return ctypes.CDLL(None, use_errno=True).prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER
    except Exception:  # noqa: BLE001 - reported in the ready frame instead
        return False


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send(obj):
    data = json.dumps(obj).encode()
    frame = struct.pack(">I", len(data)) + data
    view = memoryview(frame)
    while view:
        view = view[os.write(1, view):]


def _recv():
    header = _read_exact(0, 4)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    body = _read_exact(0, size)
    return None if body is None else json.loads(body)


def _setup_child(req, out_w, err_w, tmp_dir, rlimits):
    """Session, fds 0-2, rlimits and working directory of a forked child."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.closerange(3, 65536)
    if rlimits:
        _set_rlimits(req)
    os.chdir(tmp_dir)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote (matters without a PID namespace)


def _set_rlimits(req):
    cpu = int(req["cpu_s"])
    for res, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (req["memory_bytes"],) * 2),
        (resource.RLIMIT_NPROC, (req["max_processes"],) * 2),
        (resource.RLIMIT_FSIZE, (req["file_size_bytes"],) * 2),
        (resource.RLIMIT_NOFILE, (req["max_open_files"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_MEMLOCK, (0, 0)),
        (resource.RLIMIT_MSGQUEUE, (0, 0)),
    ):
        resource.setrlimit(res, value)


def _child(req, out_w, err_w, tmp_dir, rlimits):
    """In the forked child: limits, fds, then the program. Never returns."""
    try:
        _setup_child(req, out_w, err_w, tmp_dir, rlimits)
    except BaseException as exc:  # noqa: BLE001 - a sandbox fault, not the program's
        os.write(2, f"sandbox: child setup failed: {exc!r}\n".encode())
        os._exit(1)
    code = 1
    try:
        import builtins
        import io

        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
        sys.argv = ["<program>"]
        program = req["code"]
        req.clear()
        globs = {"__name__": "__main__", "__builtins__": builtins, "__file__": "<program>"}
        try:
            exec(compile(program, "<program>", "exec"), globs)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code & 0xFF
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException as exc:  # noqa: BLE001 - the program's error, shown as Python would
            code = 1
            try:
                traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
            except BaseException:  # noqa: BLE001 - e.g. stderr closed by the program
                os.write(2, f"{type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
        try:
            if "threading" in sys.modules:
                sys.modules["threading"]._shutdown()  # join non-daemon threads, as interpreter exit does
            import atexit

            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001 - exiting anyway
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full pipe or a closed fd
                pass
    finally:
        os._exit(code)


def _classify(status, rusage, cpu_limit, stderr):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        used = rusage.ru_utime + rusage.ru_stime
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and used >= cpu_limit):
            return "cpu_time"
        if sig == signal.SIGXFSZ:
            return "file_size"
        return None
    if os.WEXITSTATUS(status) == 0:
        return None
    tail = stderr[-2000:]
    for marker, limit in _LIMIT_MARKERS:
        if marker in tail:
            return limit
    return None


def _drain(fds, out, err, out_r, max_out, max_err):
    """Read what dead writers left in the pipes, without blocking."""
    for fd in fds:
        os.set_blocking(fd, False)
        try:
            while len(out) < max_out or fd != out_r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                if fd == out_r:
                    out += chunk[: max_out - len(out)]
                else:
                    err += chunk
                    del err[:-max_err]
        except BlockingIOError:
            pass


def _clean_up(cfg):
    """Empty the scratch directories and drop SysV IPC objects; (clean, short error or None)."""
    try:
        clean = all(cleanup.wipe_tree(d, int(cfg.get("max_tmp_entries", 10000))) for d in [cfg["tmp_dir"], *cfg.get("scratch_dirs", [])])
        if os.getpid() == 1 and _LIBC:  # our own IPC namespace: whatever is in it is the run's
            clean = cleanup.remove_sysv_ipc(_LIBC[0]) == 0 and clean
        return clean, None
    except OSError as exc:
        return False, cleanup.short_error(exc)


def _run(req, cfg):
    start = time.monotonic()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(req, out_w, err_w, cfg["tmp_dir"], cfg.get("rlimits", True))
    os.close(out_w)
    os.close(err_w)
    deadline = start + float(req["timeout_s"])
    max_out, max_err = int(req["max_stdout_bytes"]), int(req["max_stderr_bytes"])
    memory_limit = int(req["memory_bytes"]) if cfg.get("memory_watch") else None
    own_namespace = os.getpid() == 1
    out, err = bytearray(), bytearray()
    out_total = 0
    limit_hit = None
    timed_out = False
    status = rusage = None
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in (out_r, err_r, pidfd, 0):  # 0: requests; input mid-run only comes as EOF (parent gone)
        poller.register(fd, select.POLLIN)
    parent_gone = False
    open_fds = {out_r, err_r}
    next_check = start + memory.TICK_S
    while status is None or open_fds:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            timed_out, limit_hit = True, "wall_time"
            break
        if memory_limit is not None:
            if now >= next_check:
                if memory.run_bytes(own_namespace) > memory_limit:
                    limit_hit = "memory"
                    break
                next_check = now + memory.TICK_S
            remaining = min(remaining, next_check - now)
        events = poller.poll(remaining * 1000)
        if any(fd == 0 for fd, _ in events):
            parent_gone = True
            break
        for fd, _ in events:
            if fd == pidfd:
                _, status, rusage = os.wait4(pid, 0)
                poller.unregister(pidfd)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
            elif fd == out_r:
                out_total += len(chunk)
                out += chunk[: max(0, max_out - len(out))]
            else:
                err += chunk
                del err[:-max_err]
        if out_total > max_out:
            limit_hit = "output"
            break
        if status is not None and open_fds:
            break  # the program is done; background processes holding the pipes are not waited for
    memory.kill_run(pid)
    if parent_gone:
        os._exit(0)  # as PID 1, this ends the namespace and whatever still runs in it
    if status is None:
        _, status, rusage = os.wait4(pid, 0)
    if own_namespace:
        while True:  # reap everything re-parented to us
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    else:
        memory.reap()
    _drain(list(open_fds), out, err, out_r, max_out, max_err)
    for fd in (out_r, err_r, pidfd):
        os.close(fd)
    stderr = err.decode("utf-8", "replace")
    if limit_hit is None:
        limit_hit = _classify(status, rusage, int(req["cpu_s"]), stderr)
    clean, problem = _clean_up(cfg)
    if problem is not None:
        stderr += f"\nsandbox: could not clean up after the program ({problem}); its sandbox is replaced\n"
    return {
        "stdout": out.decode("utf-8", "replace"),
        "stderr": stderr,
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "limit_hit": limit_hit,
        "wall_s": time.monotonic() - start,
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "recycle": not clean,
    }


def _load_helpers(sources):
    """Make the helper modules from their source text (the sandbox sees no project file)."""
    global cleanup, memory
    loaded = {}
    for name, source in sources.items():
        module = types.ModuleType(name)
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own helper source
        loaded[name] = module
    cleanup, memory = loaded["zygote_cleanup"], loaded["zygote_memory"]


def main():
    cfg = json.loads(sys.argv[1])
    _load_helpers(json.loads(sys.argv[2]))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)  # no handlers: as PID 1 these are then undeliverable from inside
    nnp = _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: no setuid binary can raise a child's rights
    # Imports before the uid changes: without bubblewrap the dropped uid may not be able to
    # enter the interpreter's tree (under /root, say), and nothing untrusted has run yet.
    sys.path.extend(cfg.get("site_dirs", []))  # started with -S: site-packages without running .pth files
    for name in cfg.get("preload", []):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module must not stop the worker
            pass
    uid = cfg.get("uid")
    if os.getuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root to another uid: all capabilities go
    non_dumpable = _prctl(4, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/1/fd for the children
    # PR_SET_PDEATHSIG again: changing uid cleared bwrap's --die-with-parent. Best effort (a
    # root bwrap may not signal our new uid); EOF on fd 0, even mid-run, is what ends us.
    _prctl(1, signal.SIGKILL)
    # PR_SET_CHILD_SUBREAPER outside a PID namespace: a run's orphans stay ours to count and kill.
    subreaper = os.getpid() == 1 or _prctl(36, 1)
    seccomp = _install_seccomp(cfg.get("seccomp"))
    tmp_dir = cfg["tmp_dir"]
    os.makedirs(tmp_dir, exist_ok=True)
    cleanup.wipe_tree(tmp_dir, 1 << 30)
    _send({
        "ready": True, "pid": os.getpid(), "uid": os.getuid(), "nnp": nnp, "non_dumpable": non_dumpable,
        "seccomp": seccomp, "subreaper": subreaper, "memory_watch": bool(cfg.get("memory_watch")),
    })
    while True:
        req = _recv()
        if req is None:
            return
        try:
            reply = _run(req, cfg)
        except OSError as exc:
            reply = {"error": f"zygote: {cleanup.short_error(exc)}", "recycle": True}
        _send(reply)
        if reply.get("recycle"):
            return


if __name__ == "__main__":
    main()
