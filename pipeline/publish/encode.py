"""Output encoding of every record the pipeline writes: msgpack by default, or JSON."""

from __future__ import annotations

import json
from typing import Any

import msgpack


def encode(value: Any, encoding: str) -> bytes:
    if encoding == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return msgpack.packb(value, use_bin_type=True)


def decode(raw: bytes) -> Any:
    """Reads back either encoding (a JSON object starts with ``{``)."""
    if raw[:1] == b"{":
        return json.loads(raw)
    return msgpack.unpackb(raw, raw=False)
