"""What the zygote clears between two runs: the scratch directories and SysV IPC objects.

Runs inside the sandbox (loaded from source by ``zygote.py``): standard library only.

The scratch trees are the program's: they may nest thousands of directories deep (a path
past ``PATH_MAX`` cannot even be named), hold unreadable directories or symlinks that point
anywhere. So the walk never builds a path: it holds one directory descriptor at a time,
opens each child relative to it with ``O_NOFOLLOW``, and climbs back through ``..`` (the
run's processes are dead by then, so nothing moves the tree under it). Memory and
descriptors stay constant whatever the depth.
"""

import os

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SYSV = (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl"))
_IPC_RMID = 0


def wipe_tree(root, max_entries):
    """Empty the directory ``root`` (kept itself). False when it held more than
    ``max_entries`` entries: the caller then replaces the whole sandbox instead."""
    fd = os.open(root, _O_DIR)
    names = []  # the directories between root and fd
    work = 0
    try:
        while True:
            child, removed = None, False
            with os.scandir(fd) as entries:
                for entry in entries:
                    work += 1
                    if work > max_entries:
                        return False
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
                    removed = True
            if child is not None:
                os.chmod(child, 0o700, dir_fd=fd)  # a directory (checked above): the program may have locked it
                sub = os.open(child, _O_DIR, dir_fd=fd)
                os.close(fd)
                fd = sub
                names.append(child)
            elif removed:
                continue  # scan once more: entries may move while a directory is read
            elif not names:
                return True
            else:
                parent = os.open("..", _O_DIR, dir_fd=fd)
                os.close(fd)
                fd = parent
                os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)


def sysv_ids(kind):
    """Ids of the SysV IPC objects (``kind``: shm, sem or msg) of this IPC namespace."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    return [int(row.split()[1]) for row in rows if row.strip()]


def remove_sysv_ipc(libc):
    """Remove every SysV shared memory segment, semaphore set and message queue of this IPC
    namespace (the sandbox's own); returns how many are left (0 unless removal was refused)."""
    left = 0
    for kind, call in _SYSV:
        for ident in sysv_ids(kind):
            fn = getattr(libc, call)
            ok = (fn(ident, 0, _IPC_RMID, None) if kind == "sem" else fn(ident, _IPC_RMID, None)) == 0
            left += not ok
    return left


def short_error(exc):
    """An OSError as a short line without the file names it carries (a program's path can
    be kilobytes long); other errors by type and message, cut."""
    if isinstance(exc, OSError) and exc.errno is not None:
        import errno

        return f"{type(exc).__name__} {errno.errorcode.get(exc.errno, exc.errno)} ({exc.strerror})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
