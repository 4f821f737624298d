"""The sandbox's resident server: forks one child per program, enforces limits, cleans up.

This file runs *inside* the sandbox (``python -I -c <this source> <json config>``), so it
imports the standard library only and nothing from the project. Under bubblewrap it is
PID 1 of the sandbox's PID namespace, which is what makes it safe to share a uid with the
untrusted children: the kernel drops every signal sent to a namespace's init from inside
unless init installed a handler (we install none), and the zygote is made non-dumpable so
a child cannot ptrace it or open its pipes through /proc. Being PID 1 also lets it end a
run with ``kill(-1, SIGKILL)``, which reaches every process the run left behind, daemons
included, and nothing outside the namespace.

Protocol on fds 0/1: frames of a 4-byte big-endian length and UTF-8 JSON. The zygote
sends one ``ready`` frame, then answers each request frame with one reply frame. EOF on
fd 0 ends it (and, as PID 1, everything in the namespace).
"""

import json
import os
import resource
import select
import signal
import stat
import struct
import sys
import time
import traceback  # imported here: a child may lack the rights to import it later (rlimits mode)

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


def _setup_child(req, out_w, err_w, tmp_dir):
    """Session, fds 0-2, rlimits and working directory of a forked child."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.closerange(3, 65536)
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
    os.chdir(tmp_dir)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote (matters without a PID namespace)


def _child(req, out_w, err_w, tmp_dir):
    """In the forked child: limits, fds, then the program. Never returns."""
    try:
        _setup_child(req, out_w, err_w, tmp_dir)
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


def _wipe(root, max_entries):
    """Empty ``root`` without recursion (a program may nest dirs deeply). False: recycle me."""
    seen = 0
    stack = [(os.path.join(root, name), False) for name in os.listdir(root)]
    while stack:
        path, emptied = stack.pop()
        seen += 1
        if seen > max_entries:
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if emptied:
                os.rmdir(path)
                continue
            os.chmod(path, 0o700)
            stack.append((path, True))
            stack.extend((os.path.join(path, name), False) for name in os.listdir(path))
        else:
            os.unlink(path)
    return True


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


def _run(req, cfg):
    start = time.monotonic()
    tmp_dir = cfg["tmp_dir"]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(req, out_w, err_w, tmp_dir)
    os.close(out_w)
    os.close(err_w)
    deadline = start + float(req["timeout_s"])
    max_out, max_err = int(req["max_stdout_bytes"]), int(req["max_stderr_bytes"])
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
    while status is None or open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out, limit_hit = True, "wall_time"
            break
        if status is not None and not open_fds:
            break
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
    # End the run: every process it left behind goes, daemons and fork bombs included.
    try:
        if os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # nothing left to kill
    if parent_gone:
        os._exit(0)  # as PID 1, this ends the namespace and whatever still runs in it
    if status is None:
        _, status, rusage = os.wait4(pid, 0)
    if os.getpid() == 1:
        while True:  # reap everything re-parented to us
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    for fd in list(open_fds):  # writers are dead: drain what they wrote, without blocking
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
    for fd in (out_r, err_r, pidfd):
        os.close(fd)
    stderr = err.decode("utf-8", "replace")
    if limit_hit is None:
        limit_hit = _classify(status, rusage, int(req["cpu_s"]), stderr)
    clean = all(_wipe(d, int(cfg.get("max_tmp_entries", 10000))) for d in [tmp_dir, *cfg.get("scratch_dirs", [])])
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


def main():
    cfg = json.loads(sys.argv[1])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)  # no handlers: as PID 1 these are then undeliverable from inside
    nnp = _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: no setuid binary can raise a child's rights
    uid = cfg.get("uid")
    if os.getuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # from root to another uid: all capabilities go
    non_dumpable = _prctl(4, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/1/fd for the children
    # PR_SET_PDEATHSIG again: changing uid cleared bwrap's --die-with-parent. Best effort (a
    # root bwrap may not signal our new uid); EOF on fd 0, even mid-run, is what ends us.
    _prctl(1, signal.SIGKILL)
    seccomp = _install_seccomp(cfg.get("seccomp"))
    tmp_dir = cfg["tmp_dir"]
    os.makedirs(tmp_dir, exist_ok=True)
    _wipe(tmp_dir, 1 << 30)
    sys.path.extend(cfg.get("site_dirs", []))  # started with -S: site-packages without running .pth files
    for name in cfg.get("preload", []):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module must not stop the worker
            pass
    _send({"ready": True, "pid": os.getpid(), "uid": os.getuid(), "nnp": nnp, "non_dumpable": non_dumpable, "seccomp": seccomp})
    while True:
        req = _recv()
        if req is None:
            return
        try:
            reply = _run(req, cfg)
        except OSError as exc:
            reply = {"error": f"zygote: {exc}", "recycle": True}
        _send(reply)
        if reply.get("recycle"):
            return


if __name__ == "__main__":
    main()
