"""Where a build may write: the target directory's guard and the place of partial builds.

A build replaces ``--out`` only when it finished and only when ``--out`` is missing, empty,
or an index this builder wrote (a ``manifest.json`` with a ``layout_version``): a directory
of someone's notes is never deleted. A build that stopped early (``--strict`` at a bad line)
is saved beside the target, as ``DIR.partial-<time>``, so a complete index at ``DIR`` stays.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

MANIFEST = "manifest.json"


class IndexTargetError(ValueError):
    """``--out`` names something a build must not replace; nothing was deleted."""


def is_our_index(path: Path) -> bool:
    """Whether ``path`` holds an index this builder wrote (complete or partial)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and "layout_version" in manifest


def target_problem(out: Path) -> str | None:
    """Why a build must not replace ``out`` (None when it may)."""
    if not out.exists() and not out.is_symlink():
        return None
    if out.is_symlink() or not out.is_dir():
        return f"{out} exists and is not a directory: refusing to replace it (nothing was deleted); choose another --out"
    if not any(out.iterdir()) or is_our_index(out):
        return None
    return (f"{out} is not empty and holds no search index of ours (no {MANIFEST} from this builder): "
            f"refusing to replace it (nothing was deleted); choose a new or empty --out")


def check_target(out: Path) -> None:
    problem = target_problem(out)
    if problem is not None:
        raise IndexTargetError(problem)


def partial_dir(out: Path) -> Path:
    """A fresh directory name beside ``out`` for a build that stopped early."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = out.parent / f"{out.name}.partial-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = out.parent / f"{out.name}.partial-{stamp}-{n}"
    return candidate
