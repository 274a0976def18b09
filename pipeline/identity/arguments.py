"""What the stitch script is sent: a batch of events laid out as ``event_fields`` defines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgpack

from pipeline.identity import event_fields


@dataclass
class StitchEvent:
    """One event as the graph sees it; built by the caller from ``pipeline.model.Event``."""

    event_id: str
    timestamp_ms: int
    channel: str
    type: str
    identities: list[str]  # identity keys, primary included
    primary: str
    attributes: dict[str, bytes]  # flattened path -> msgpack-encoded value
    summary: bytes  # timeline entry, opaque to Redis
    topic: str
    partition: int
    offset: int


@lru_cache(maxsize=1 << 16)
def bucket(key: str) -> str:
    """The index bucket of an identity key, in decimal, as lua/includes/index.lua hashes it
    (bucket_key): computed here, the script spares its slowest few microseconds a call
    per common event."""
    data = key.encode() + b"\0\0\0"
    h = 0
    for i in range(0, len(data) - 3, 4):
        a, x, c, d = data[i : i + 4]
        h = (h * 923521 + a * 29791 + x * 961 + c * 31 + d) % 2147483647
    return str(h % 65536)


# msgpack.packb makes a Packer per call; this one is kept. It packs only bytes and ints,
# in C without releasing the GIL, so threads cannot interleave in its buffer.
_PACK_RAW = msgpack.Packer(use_bin_type=False).pack


def stored_head(value: bytes, timestamp_ms: int) -> bytes:
    """An attribute value as a fragment stores it (msgpack [value, ts, seq], includes/
    base.lua) up to its seq, which only Redis knows: the script appends it, and packs
    nothing per attribute."""
    return b"\x93" + _PACK_RAW(value) + _PACK_RAW(timestamp_ms)


def stitch_batch(events: Sequence[StitchEvent]) -> list[Any]:
    """The events as the stitch script reads them (its ARGV[2], before msgpack): one flat
    list, each event laid out by ``event_fields.flatten``."""
    return [
        value
        for e in events
        for value in event_fields.flatten(
            {
                **vars(e),
                "attributes": [
                    x
                    for path, value in e.attributes.items()
                    for x in (path, stored_head(value, e.timestamp_ms))
                ],
                "timestamp_text": str(e.timestamp_ms),
                "bucket": bucket(e.identities[0]) if e.identities else "",
            }
        )
    ]
