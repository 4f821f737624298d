"""Sandbox benchmark: isolated executions per second, pre-forked pool vs a fresh sandbox per call.

    python bench/sandbox.py                    # ~1 minute, pinned to 2 cores
    python bench/sandbox.py --seconds 3 --cores 2 --json /tmp/sandbox.json

Each row drives a runner from as many client threads as it has workers, for a fixed
time, and counts finished runs. Rows:

- pool: ``SandboxPool`` (bubblewrap sandbox, zygote forks one child per program);
- fresh: ``run_once`` (a new bubblewrap + interpreter per program, same isolation);
- lean fresh: the same bubblewrap with ``python -I -S -c`` straight in it (no zygote, limits
  or seccomp), the floor any sandbox-per-call design pays;
- unsandboxed ``python3 -c`` per program, as a reference for process start cost only;
- the same pool and fresh rows with every 5th program hostile (20%): infinite loop, sleep,
  fork bomb, 10 GB allocation, output flood, thread bomb, disk fill; all with a 1 s timeout.

Every benign run's output is checked, and every hostile one must end with a limit hit or
an error exit; the row reports how many did not (should be 0).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.tools.sandbox import SandboxConfig, SandboxLimits, SandboxPool, SandboxResult, run_once  # noqa: E402
from orchestrator.tools.sandbox.launch import choose_mode, worker_spec  # noqa: E402
from orchestrator.tools.sandbox.probe import bwrap_version  # noqa: E402

BENIGN = "print(sum(i * i for i in range(100)))"
BENIGN_OUT = f"{sum(i * i for i in range(100))}\n"
HOSTILE = {
    "infinite_loop": "while True: pass",
    "sleep": "import time\ntime.sleep(100)",
    "fork_bomb": "import os\nwhile True: os.fork()",
    "alloc_10gb": "x = bytearray(10 * 10**9)",
    "print_flood": "import sys\nwhile True: sys.stdout.write('x' * 65536)",
    "thread_bomb": "import threading, time\nwhile True: threading.Thread(target=time.sleep, args=(100,), daemon=True).start()",
    "fill_disk": "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20))\n    i += 1",
}
TIMEOUT_S = 1.0


@dataclass
class Row:
    name: str
    workers: int
    runs: int = 0
    seconds: float = 0.0
    benign: int = 0
    hostile: int = 0
    wrong: int = 0  # benign runs with a wrong result, or hostile runs that ended "ok"
    cpu_s: float = 0.0  # CPU used by everything involved, all cores together
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def per_s(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.runs if self.runs else 0.0

    def capacity(self, cores: int) -> float:
        """Executions/s these cores would give if nothing else ran on them."""
        return cores * 1000 / self.cpu_ms if self.cpu_ms else 0.0

    def summary(self) -> dict[str, float | int | str]:
        lat = sorted(self.latencies_ms) or [0.0]
        return {
            "name": self.name, "workers": self.workers, "runs": self.runs, "execs_per_s": round(self.per_s, 1),
            "cpu_ms_per_exec": round(self.cpu_ms, 2),
            "benign": self.benign, "hostile": self.hostile, "wrong": self.wrong,
            "benign_p50_ms": round(statistics.median(lat), 2), "benign_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 2),
        }


def programs(hostile_every: int) -> Iterator[tuple[str, str]]:
    hostile = itertools.cycle(HOSTILE.items())
    for i in itertools.count():
        if hostile_every and i % hostile_every == hostile_every - 1:
            yield next(hostile)
        else:
            yield "benign", BENIGN


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pool: SandboxPool | None) -> float:
    """CPU used so far by this process, its reaped children and (for a pool) its live zygotes
    and everything they reaped: what one execution really costs, whatever else runs here."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own + kids.ru_utime + kids.ru_stime
    for launcher in pool.worker_pids() if pool else []:
        try:
            children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        except OSError:
            continue
        for pid in [launcher, *children]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
    return total


def drive(
    name: str, run: Callable[[str], SandboxResult], threads: int, seconds: float, hostile_every: int = 0, pool: SandboxPool | None = None
) -> Row:
    """Run programs from ``threads`` client threads for ``seconds``; count what finished."""
    row = Row(name, threads)
    cpu_before = cpu_seconds(pool)
    source = programs(hostile_every)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                kind, code = next(source)
            start = time.monotonic()
            result = run(code)
            ms = (time.monotonic() - start) * 1000
            with lock:
                row.runs += 1
                if kind == "benign":
                    row.benign += 1
                    row.latencies_ms.append(ms)
                    row.wrong += result.stdout != BENIGN_OUT
                else:
                    row.hostile += 1
                    row.wrong += result.ok  # a hostile program must never end as a clean success

    start = time.monotonic()
    clients = [threading.Thread(target=client) for _ in range(threads)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    row.seconds = time.monotonic() - start
    row.cpu_s = cpu_seconds(pool) - cpu_before
    print(f"  {name:<40} {row.per_s:8.1f} execs/s  {row.cpu_ms:6.2f} CPU ms/exec  ({row.runs} runs, {row.wrong} wrong)", flush=True)
    return row


def lean_fresh_sandbox(code: str) -> SandboxResult:
    """The floor of a sandbox-per-call design: the same bubblewrap, ``python -I -S`` straight in
    it, no zygote, no rlimits, no seccomp, no output protocol."""
    spec = worker_spec(SandboxConfig(), choose_mode(SandboxConfig()), 0, preload=False)
    argv = spec.argv[: spec.argv.index("--") + 1] + [os.path.realpath(sys.executable), "-I", "-S", "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S + 5, env=spec.env)
    return SandboxResult(stdout=out.stdout, stderr=out.stderr, exit_code=out.returncode)


def unsandboxed(code: str) -> SandboxResult:
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S + 5)
    return SandboxResult(stdout=out.stdout, stderr=out.stderr, exit_code=out.returncode)


def machine() -> dict[str, str | int]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {
        "cpu": cpu, "cores_used": len(os.sched_getaffinity(0)), "kernel": platform.release(),
        "python": platform.python_version(), "bwrap": bwrap_version() or "none", "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    ap.add_argument("--cores", type=int, default=2, help="pin this process and its sandboxes to this many cores")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    cpus = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cpus)
    info = machine()
    info["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
    print(f"machine: {info}")
    limits = SandboxLimits(timeout_s=TIMEOUT_S)
    n = len(cpus)
    rows: list[Row] = []

    with SandboxPool(SandboxConfig(num_workers=n), limits) as pool:
        print(f"isolation: mode={pool.mode} full={pool.isolation.get('full')} gaps={pool.isolation.get('gaps')}")
        for _ in range(50):  # warm up
            pool.run(BENIGN)
        rows.append(drive(f"pool ({n} workers)", pool.run, n, args.seconds, pool=pool))
    rows.append(drive("fresh sandbox per call", lambda c: run_once(c, limits=limits), n, args.seconds))
    if choose_mode(SandboxConfig()) != "rlimits":
        rows.append(drive("lean fresh bwrap + python3 -I -S (floor)", lean_fresh_sandbox, n, args.seconds))
    rows.append(drive("unsandboxed python3 -I -S -c (reference)", unsandboxed, n, args.seconds))
    with SandboxPool(SandboxConfig(num_workers=n), limits, probe=False) as pool:
        rows.append(drive(f"pool ({n} workers), 20% hostile", pool.run, n, args.seconds, hostile_every=5, pool=pool))
    with SandboxPool(SandboxConfig(num_workers=4 * n), limits, probe=False) as pool:
        rows.append(drive(f"pool ({4 * n} workers), 20% hostile", pool.run, 4 * n, args.seconds, hostile_every=5, pool=pool))
    rows.append(drive("fresh sandbox per call, 20% hostile", lambda c: run_once(c, limits=limits), n, args.seconds, hostile_every=5))

    by = {r.name: r for r in rows}
    pool_r, fresh_r = rows[0], by["fresh sandbox per call"]
    plain_r = by["unsandboxed python3 -I -S -c (reference)"]
    lean_r = by.get("lean fresh bwrap + python3 -I -S (floor)")
    hostile_pool, hostile_fresh = by[f"pool ({n} workers), 20% hostile"], by["fresh sandbox per call, 20% hostile"]
    print()
    print(f"{'row':<42} {'workers':>7} {'execs/s':>9} {'CPU ms/exec':>12} {f'cap. {n} cores':>13} {'benign p50 ms':>14} {'p99 ms':>8} {'runs':>6} {'wrong':>6}")
    for r in rows:
        s = r.summary()
        print(
            f"{r.name:<42} {r.workers:>7} {s['execs_per_s']:>9} {s['cpu_ms_per_exec']:>12} {r.capacity(n):>13.0f} "
            f"{s['benign_p50_ms']:>14} {s['benign_p99_ms']:>8} {r.runs:>6} {r.wrong:>6}"
        )
    ratios = {
        "pool / fresh sandbox": pool_r.per_s / fresh_r.per_s,
        "pool / unsandboxed python3": pool_r.per_s / plain_r.per_s,
        "pool hostile (same workers) / pool": hostile_pool.per_s / pool_r.per_s,
        "pool hostile / fresh hostile": hostile_pool.per_s / hostile_fresh.per_s,
    }
    if lean_r is not None:
        ratios["pool / lean fresh bwrap (floor)"] = pool_r.per_s / lean_r.per_s
    print()
    for k, v in ratios.items():
        print(f"ratio {k:<38} {v:6.2f}x")
    print(f"\n'cap.': {n} cores x 1000 / CPU ms per execution, the rate if nothing else used these cores.")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (the measured rates fall when other work shares the cores)")
    target = 200.0
    print(f"\ntarget >= {target:.0f} isolated execs/s from the pool: {'met' if pool_r.per_s >= target else 'NOT met'} ({pool_r.per_s:.0f}/s)")
    if args.json:
        summaries = [dict(r.summary(), capacity_per_s=round(r.capacity(n), 1)) for r in rows]
        args.json.write_text(json.dumps({"machine": info, "rows": summaries, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
