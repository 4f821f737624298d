"""A small seccomp filter: the syscalls a sandboxed program has no business making.

A deny list, not an allow list: Python and its C extensions make many syscalls, and an
allow list that misses one breaks ordinary programs in ways the model cannot understand.
Denied here: new namespaces (``unshare``, ``setns``, namespace flags on ``clone``; ``clone3``
gets ENOSYS, whose flags seccomp cannot read, and glibc falls back to ``clone``), ``ptrace``
and ``process_vm_*`` (defence in depth for the zygote, which shares the program's uid),
kernel-facing interfaces with a record of exploits (``bpf``, ``perf_event_open``,
``userfaultfd``, ``io_uring_*``, keyrings), mounts, module/kexec/reboot calls, and System V
IPC (``shmget`` and friends: segments are memory no process's RSS shows, and they outlive
the program; Python's multiprocessing uses POSIX shared memory in ``/dev/shm`` instead).
Other ABIs (x32, 32-bit) are refused outright, or they would bypass the numbers below.

The zygote installs the filter on itself (after ``PR_SET_NO_NEW_PRIVS``), so every child
inherits it; this works in every mode, the rlimits fallback included.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct sock_filter opcodes (linux/bpf_common.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data; arg0's low half (little endian)
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

_DENIED_NAMES = (
    "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
    "request_key", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "personality", "syslog", "quotactl",
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl",
)
# Syscall numbers per architecture: (AUDIT_ARCH, {name: nr}, clone nr, clone3 nr, x32 bit)
_X86_64 = {
    "unshare": 272, "setns": 308, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "keyctl": 250, "add_key": 248, "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "personality": 135, "syslog": 103, "quotactl": 179,
    "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
}
_AARCH64 = {
    "unshare": 97, "setns": 268, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "bpf": 280,
    "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "keyctl": 219, "add_key": 217, "request_key": 218, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "init_module": 105, "finit_module": 273, "delete_module": 106,
    "kexec_load": 104, "kexec_file_load": 294, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
    "personality": 92, "syslog": 116, "quotactl": 60,
    "shmget": 194, "shmat": 196, "shmctl": 195, "shmdt": 197, "semget": 190, "semop": 193, "semctl": 191, "semtimedop": 192,
    "msgget": 186, "msgsnd": 189, "msgrcv": 188, "msgctl": 187,
}
_ARCHES = {
    "x86_64": (0xC000003E, _X86_64, 56, 435, True),
    "aarch64": (0xC00000B7, _AARCH64, 220, 435, False),
}


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _ret_errno(err: int) -> bytes:
    return _ins(_RET_K, 0x00050000 | err)  # SECCOMP_RET_ERRNO


def build_filter(machine: str | None = None) -> bytes | None:
    """The filter as raw ``struct sock_filter`` entries; None on an architecture we do not know."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers, clone_nr, clone3_nr, has_x32 = arch
    prog = [
        _ins(_LD_W_ABS, _OFF_ARCH),
        _ins(_JEQ_K, audit_arch, 1, 0),
        _ins(_RET_K, _RET_KILL_PROCESS),  # a foreign ABI: its numbers mean other calls
        _ins(_LD_W_ABS, _OFF_NR),
    ]
    if has_x32:
        prog += [_ins(_JGE_K, 0x40000000, 0, 1), _ret_errno(errno.ENOSYS)]
    for name in _DENIED_NAMES:
        prog += [_ins(_JEQ_K, numbers[name], 0, 1), _ret_errno(errno.EPERM)]
    prog += [_ins(_JEQ_K, clone3_nr, 0, 1), _ret_errno(errno.ENOSYS)]
    prog += [
        _ins(_JEQ_K, clone_nr, 0, 4),
        _ins(_LD_W_ABS, _OFF_ARG0),
        _ins(_JSET_K, _CLONE_NS_FLAGS, 0, 1),
        _ret_errno(errno.EPERM),
        _ins(_RET_K, _RET_ALLOW),
        _ins(_RET_K, _RET_ALLOW),
    ]
    return b"".join(prog)
