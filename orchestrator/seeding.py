"""Seeds derived from the run's seed and named streams, stable across processes.

Every random draw of a run comes from ``derived_seed(seed, stream, rank, step)``: a run
resumed at step k draws what the uninterrupted run would have drawn, and two streams
never share numbers. Streams are named, not numbered, so adding one changes no other.
"""

from __future__ import annotations

import hashlib


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed from integers and stream names (unlike hash(), the same in every process)."""
    blob = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") >> 1
