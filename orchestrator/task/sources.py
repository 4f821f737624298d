"""Where a task's data comes from: paths relative to the project, and the hub or local files.

``source: auto`` takes the hub when it answers (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``
answer "no" at once) and the local files otherwise; a hub that answers but fails to load
falls back to the local files with a warning. ``hub`` and ``local`` force one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("auto", "hub", "local")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
T = TypeVar("T")


def resolve_path(path: str | os.PathLike[str], root: Path = PROJECT_ROOT) -> Path:
    """``path`` made absolute: as given, or against the working directory, or against ``root``
    (the project), the first that exists (Ray workers do not share the driver's cwd)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (Path.cwd(), root):
        if (base / p).exists():
            return (base / p).resolve()
    return (Path.cwd() / p).resolve()


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """False in offline mode or when the hub's host does not answer within ``timeout_s``."""
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in OFFLINE_VARS):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def hub_or_local(source: str, what: str, from_hub: Callable[[], T], from_local: Callable[[], T]) -> T:
    """``from_hub()`` or ``from_local()`` as ``source`` says (see the module docstring)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    use_hub = source == "hub" or (source == "auto" and hub_reachable())
    if use_hub:
        try:
            return from_hub()
        except Exception as err:  # noqa: BLE001 - auto falls back to the local files, loudly
            if source == "hub":
                raise
            log.warning("%s: the hub answered but loading failed (%s); using the local files", what, err)
    try:
        return from_local()
    except FileNotFoundError as err:
        why = "the hub was not asked (source: local)" if source == "local" else "the hub did not answer"
        raise FileNotFoundError(f"{err}; {why}") from None
