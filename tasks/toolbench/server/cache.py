"""The response cache, keyed by the canonical JSON of (tool, api, parsed arguments).

StableToolBench keys its cache by ``str(tool_input)``: ``{"a": 1, "b": 2}`` and
``{"b": 2, "a": 1}`` are two keys, and so are ``'x'`` and ``"x"`` quoting. Here the
arguments are parsed first and the key is their JSON with sorted keys and fixed separators,
so every spelling of one call is one key (the sample's 209 recorded calls are 86 strings
but 84 calls).

Entries persist as JSON lines (``{"key", "body", "text", "origin"}``); written atomically as
a whole, or appended one line per new entry for write-back.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_key(tool: str, api: str, arguments: dict[str, Any]) -> str:
    """The canonical key of one call: names as the server standardises them, arguments parsed."""
    return json.dumps([tool, api, arguments], sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class CacheEntry:
    """A recorded answer: ``body`` as the server returns it; ``text`` the exact observation
    when the body cannot reproduce it (ToolBench had cut it); ``origin`` where it came from
    (``tree:<file>``, ``stabletoolbench:<file>``, ``llm:<model>``, ``real``)."""

    body: dict[str, Any]
    text: str | None = None
    origin: str = ""


class ResponseCache:
    """In-memory cache, safe to share between a tool actor's threads."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()
        self.conflicts = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def put(self, key: str, entry: CacheEntry, overwrite: bool = False) -> bool:
        """Store ``entry``; the first recording of a call wins unless ``overwrite``. Returns
        whether it was stored. Two different recordings of one call count as a conflict."""
        with self._lock:
            old = self._entries.get(key)
            if old is not None and not overwrite:
                if (old.body, old.text) != (entry.body, entry.text):
                    self.conflicts += 1
                return False
            self._entries[key] = entry
            return True

    def items(self) -> list[tuple[str, CacheEntry]]:
        with self._lock:
            return list(self._entries.items())

    def save(self, path: str | Path) -> Path:
        """Write every entry to ``path`` as JSON lines, atomically (a crash leaves the old file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for key, entry in sorted(self.items()):
                f.write(entry_line(key, entry))
        os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> int:
        """Add the entries of a JSON-lines file; returns how many were new."""
        path = Path(path)
        added = 0
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    key, body = row["key"], row["body"]
                    if not isinstance(key, str) or not isinstance(body, dict):
                        raise TypeError("'key' must be a string and 'body' an object")
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise ValueError(f"{path}:{lineno}: not a cache entry ({err})") from None
                added += self.put(key, CacheEntry(body=body, text=row.get("text"), origin=row.get("origin", "")))
        return added


def entry_line(key: str, entry: CacheEntry) -> str:
    row: dict[str, Any] = {"key": key, "body": entry.body}
    if entry.text is not None:
        row["text"] = entry.text
    if entry.origin:
        row["origin"] = entry.origin
    return json.dumps(row, ensure_ascii=False) + "\n"


def append_entry(path: str | Path, key: str, entry: CacheEntry) -> None:
    """Append one entry with a single write on an O_APPEND descriptor, so actors that share
    the file on one machine do not interleave lines."""
    data = entry_line(key, entry).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
