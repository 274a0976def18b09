"""Output encoding of every record the pipeline writes: msgpack by default, or JSON; each
record names its encoding in a ``content-type`` header, so kcat, Kafka's console consumer
and Kafka Connect can tell what they read."""

from __future__ import annotations

import json
from typing import Any

import msgpack

CONTENT_TYPE = "content-type"
MEDIA_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}
# Dead letters carry the producer's bytes as they came, whatever they are.
OPAQUE = b"application/octet-stream"


def content_type(encoding: str) -> tuple[str, bytes]:
    """The header of a record written in ``encoding`` (msgpack or json)."""
    return CONTENT_TYPE, MEDIA_TYPES[encoding].encode()


def encode(value: Any, encoding: str) -> bytes:
    if encoding == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return msgpack.packb(value, use_bin_type=True)


def decode(raw: bytes, media_type: bytes | None = None) -> Any:
    """Reads back either encoding: as the ``content-type`` header says, else by the first
    byte (a JSON object starts with ``{``), for records written before the header."""
    if media_type == b"application/json" or (media_type is None and raw[:1] == b"{"):
        return json.loads(raw)
    return msgpack.unpackb(raw, raw=False)
