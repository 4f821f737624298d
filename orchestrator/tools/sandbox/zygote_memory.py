"""The memory of a run, all its processes together: what the zygote's watch adds up.

Runs inside the sandbox (loaded from source by ``zygote.py``): standard library only.

RLIMIT_AS bounds each process; a program that forks children multiplies it. So while a run
lasts the zygote adds up, every ``TICK_S``, the resident anonymous and shared memory
(``RssAnon`` + ``RssShmem``) of every process of the run, plus SysV segments that no process
has attached (resident but in nobody's RSS), and kills the run past the limit. Pages a child
shares copy-on-write with the zygote are counted in each process, so the sum errs on the
strict side (by the ~10 MB a forked interpreter starts with, per process).

Which processes are the run's: under bubblewrap the zygote is PID 1 of the sandbox's PID
namespace, so every process in ``/proc`` but itself. Without it (rlimits), the zygote is a
child subreaper, so orphans of the run are re-parented to it and stay its descendants.
"""

import os

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
