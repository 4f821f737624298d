# The isolation probe: runs INSIDE the sandbox as an ordinary untrusted program (probe.py
# prepends ``P = <json of what to look for>``). It reports what it can see and do; it judges
# nothing (probe.assess does, on the host). Standard library only.
import ctypes
import errno
import json
import os
import resource


def fnv1a(data):
    """A 64-bit FNV-1a hash: no hashlib here (a dropped uid may not import it, rlimits mode)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


P = json.loads(P)  # noqa: F821 - prepended by probe.py
r = {"uid": os.getuid(), "pid": os.getpid(), "env": sorted(os.environ), "tmp": os.listdir(".")}
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
r["cap_eff"] = status.get("CapEff", "").strip()
r["no_new_privs"] = status.get("NoNewPrivs", "").strip()
r["seccomp"] = status.get("Seccomp", "").strip()
r["ns"] = {}
for name in P["NAMESPACES"]:
    try:
        r["ns"][name] = os.readlink(f"/proc/self/ns/{name}")
    except OSError:
        pass

libc = ctypes.CDLL(None, use_errno=True)
r["unshare_denied"] = libc.unshare(0x10000000) != 0  # CLONE_NEWUSER
r["ptrace_denied"] = libc.ptrace(16, 1, 0, 0) != 0  # PTRACE_ATTACH to the zygote
shm = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
r["sysv_denied"] = shm == -1
if shm != -1:
    libc.shmctl(shm, 0, None)  # IPC_RMID

# Every process this program can see: does any carry the trainer's canary tokens?
r["cmd_token_seen"] = r["env_token_seen"] = r["trainer_env_seen"] = False
r["environ_readable"] = []
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
for pid in sorted(set(pids) | {P["TRAINER_PID"], P["CANARY_PID"]}):
    if pid == os.getpid():
        continue
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if P["CMD_TOKEN"].encode() in f.read():
                r["cmd_token_seen"] = True
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        continue
    r["environ_readable"].append(pid)
    r["env_token_seen"] |= P["ENV_TOKEN"].encode() in environ
    r["trainer_env_seen"] |= fnv1a(environ) == P["TRAINER_ENV_HASH"]
r["pids"] = len(pids)


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


r["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
# Only where no host interface is visible: never send real traffic from a machine's own network.
r["net"] = {"loopback": connect(("127.0.0.1", P["PORT"]))}
r["net"]["outside"] = connect(("192.0.2.1", 9)) if set(r["interfaces"]) <= {"lo"} else "not tried: host interfaces visible"


def readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


r["leaked"] = [p for p in P["FILES"] if readable(p)]
try:
    with open(P["TMP_FILE"]) as f:
        r["tmp_canary_read"] = P["TMP_TOKEN"] in f.read()
except OSError:
    r["tmp_canary_read"] = False
r["project_visible"] = os.path.exists(P["PROJECT"])


def writable(d):
    try:
        with open(os.path.join(d, ".probe"), "w"):
            return True
    except OSError:
        return False


r["writable"] = [d for d in P["WRITE_DIRS"] if writable(d)]
r["rlimits"] = {n: resource.getrlimit(getattr(resource, n))[0] for n in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE")}
print(json.dumps(r))
