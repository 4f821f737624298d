"""The processes of a run: which they are, the memory they hold together, how they end.

Runs inside the sandbox (loaded from source by ``zygote.py``): standard library only.

RLIMIT_AS bounds each process; a program that forks children multiplies it. So while a run
lasts the zygote adds up, every ``TICK_S``, the resident anonymous and shared memory
(``RssAnon`` + ``RssShmem``) of every process of the run, plus SysV segments that no process
has attached (resident but in nobody's RSS), and kills the run past the limit. Pages a child
shares copy-on-write with the zygote are counted in each process, so the sum errs on the
strict side (by the ~10 MB a forked interpreter starts with, per process).

Which processes are the run's: under bubblewrap the zygote is PID 1 of the sandbox's PID
namespace, so every process in ``/proc`` but itself, and ``kill(-1)`` ends them all. Without
it (rlimits, none), the zygote is a child subreaper, so orphans of the run (``setsid``
daemons included) are re-parented to it and stay its descendants, which ``kill_run`` kills
until none is left.
"""

import os
import signal
import time

TICK_S = 0.02
_FIELDS = ("RssAnon:", "RssShmem:")


def descendants(pid):
    """Pids below ``pid`` in the process tree (through every thread's children list)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def alive(pid):
    """Whether ``pid`` still runs (a zombie does not: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def run_pids(own_namespace):
    """The pids of the current run: all but PID 1 in our own namespace, else our descendants."""
    if own_namespace:
        return [int(name) for name in os.listdir("/proc") if name.isdigit() and name != "1"]
    return descendants(os.getpid())


def process_bytes(pid):
    """Resident anonymous + shared memory of ``pid`` in bytes (0 once it is gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(_FIELDS):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return total


def detached_sysv_bytes():
    """Resident bytes of this IPC namespace's SysV segments that no process has attached."""
    try:
        with open("/proc/sysvipc/shm") as f:
            header, *rows = f.read().splitlines()
    except (OSError, ValueError):
        return 0
    names = header.split()
    try:
        nattch, rss = names.index("nattch"), names.index("rss")
    except ValueError:
        return 0
    total = 0
    for row in rows:
        cols = row.split()
        if len(cols) > max(nattch, rss) and cols[nattch] == "0":
            total += int(cols[rss])
    return total


def run_bytes(own_namespace):
    """The memory the current run holds, all its processes together."""
    used = sum(process_bytes(pid) for pid in run_pids(own_namespace))
    return used + (detached_sysv_bytes() if own_namespace else 0)


def kill_run(pid):
    """End the run: every process it left behind goes, daemons and fork bombs included."""
    if os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)  # as PID 1: everything in the namespace but us
        except ProcessLookupError:
            pass
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for _ in range(200):  # a subreaper: orphans (setsid daemons included) are our descendants
        left = [p for p in descendants(os.getpid()) if alive(p)]
        if not left:
            return
        for child in left:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)


def reap():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return
