"""The event envelope (CONTRACT 3) checked against ``schemas/event.schema.json``."""

from __future__ import annotations

from typing import Any

from pipeline.ingest.schema import SchemaCheck

EVENT_SCHEMA = SchemaCheck(
    "event.schema.json",
    reasons={
        "event_id": "bad_event_id",
        "timestamp": "bad_timestamp",
        "kind": "bad_kind",
        "channel": "bad_channel",
        "identities/maxItems": "too_many_identities",
        "identities/minItems": "no_valid_identity",
    },
    expected={
        "timestamp": "ISO-8601 with a zone (2026-11-28T14:45:21.123Z) or epoch milliseconds",
        "channel": "lower-case letters, digits, '_' and '-'",
    },
)


def validate_envelope(doc: dict[str, Any]) -> None:
    """Raise ``Rejected`` unless ``doc`` has the shape of an event envelope."""
    EVENT_SCHEMA.validate(doc)
