"""One timestamp format on every output: ISO-8601, UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


# Each publication of a profile formats its members' times again: the same few values.
@lru_cache(maxsize=16384)
def iso_ms(epoch_ms: int) -> str:
    seconds, ms = divmod(epoch_ms, 1000)
    return f"{_iso_s(seconds)}.{ms:03d}Z"


# strftime was a fifth of assembling a document, whose timestamps share a few seconds.
@lru_cache(maxsize=4096)
def _iso_s(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
