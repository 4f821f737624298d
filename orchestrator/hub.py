"""Is the Hugging Face hub reachable? Tasks use the hub when it is, local files otherwise."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """False in offline mode (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) or when the hub's host does
    not answer within ``timeout_s``: a machine without a network falls back at once."""
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in OFFLINE_VARS):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True
