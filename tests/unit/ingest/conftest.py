"""Fixtures of the ingest tests: the shipped identity configuration and a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from pipeline.identity.config import IdentityConfig, load
from pipeline.ingest import parse_event
from pipeline.model import Event

NOW_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z
MAX_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def now_ms() -> int:
    return NOW_MS


@pytest.fixture(scope="session")
def config() -> IdentityConfig:
    return load()


@pytest.fixture(scope="session")
def envelope() -> Callable[..., dict[str, Any]]:
    """A valid envelope (CONTRACT 3's example); keyword arguments replace fields,
    ``None`` removes one."""

    def build(**fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": "b8a0c6e2-0001",
            "timestamp": "2026-11-28T14:45:21.123Z",
            "kind": "experience",
            "channel": "web",
            "identities": [
                {"namespace": "ecid", "id": "38652"},
                {"namespace": "crm_id", "id": "31260XYZ", "primary": True},
            ],
            "attributes": {"firstName": "Evan", "loyalty": {"tier": "gold"}},
            "event": {"type": "commerce.productViews", "sku": "SHOE-42"},
        }
        doc.update(fields)
        return {key: value for key, value in doc.items() if value is not None}

    return build


@pytest.fixture(scope="session")
def parse(config: IdentityConfig) -> Callable[..., Event]:
    """parse_event on a dict (encoded as JSON, or msgpack with ``encoding="msgpack"``)
    or on raw bytes, from partition 3 offset 42 of cdp.events.web."""

    def run(doc: dict[str, Any] | bytes | None, encoding: str = "json", **kwargs: Any) -> Event:
        if not isinstance(doc, dict):
            raw = doc
        elif encoding == "msgpack":
            raw = msgpack.packb(doc)
        else:
            raw = json.dumps(doc).encode()
        options: dict[str, Any] = {
            "topic": "cdp.events.web",
            "partition": 3,
            "offset": 42,
            "config": config,
            "channel_default": "web",
            "max_bytes": MAX_BYTES,
            "now_ms": NOW_MS,
        }
        options.update(kwargs)
        return parse_event(raw, **options)

    return run
