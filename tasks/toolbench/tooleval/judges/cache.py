"""Judge requests cached by their canonical form, with the tokens they cost.

The key is the SHA-256 of the request body as canonical JSON (sorted keys, no spaces), so
two requests that differ only in key order are one entry, and anything that changes what
the endpoint sees (model, prompt, temperature, seed) is a new one. The file is JSON lines,
appended as replies arrive, so an interrupted evaluation keeps what it paid for and a
second run of the same evaluation sends no request at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def canonical_json(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(body: Any) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass
class JudgeCost:
    """What a judge spent: requests sent and answered from the cache, tokens billed and saved."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RequestCache:
    """Replies by canonical request; in memory, and in a JSONL file when ``path`` is given."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    self._entries[record["key"]] = record["response"]
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise ValueError(f"{self.path}:{number}: not a cache record ({err})") from err
            logger.info("judge cache %s: %d replies", self.path, len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, body: Any) -> dict[str, Any] | None:
        with self._lock:
            return self._entries.get(request_key(body))

    def put(self, body: Any, response: dict[str, Any]) -> None:
        key = request_key(body)
        with self._lock:
            self._entries[key] = response
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as out:
                    out.write(json.dumps({"key": key, "request": body, "response": response},
                                         ensure_ascii=False) + "\n")
