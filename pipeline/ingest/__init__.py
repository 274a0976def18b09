"""Ingest: the bytes of a Kafka record -> a validated, normalised ``Event``, or
``Rejected(reason, detail)`` for the dead-letter topic. Pure: no Kafka, no Redis."""

from __future__ import annotations

from pipeline.identity.config import IdentityConfig
from pipeline.ingest.attributes import flatten_attributes, unflatten_attributes
from pipeline.ingest.decode import decode_value
from pipeline.ingest.envelope import validate_envelope
from pipeline.ingest.identities import InvalidIdentity, normalise_identity, resolve_identities
from pipeline.ingest.privacy import PrivacyRequest, parse_privacy_request
from pipeline.ingest.reasons import DROP_REASONS, REJECT_REASONS
from pipeline.ingest.timestamps import clock_ms, parse_timestamp
from pipeline.model import Event, Source

__all__ = [
    "DROP_REASONS",
    "REJECT_REASONS",
    "InvalidIdentity",
    "PrivacyRequest",
    "decode_value",
    "flatten_attributes",
    "normalise_identity",
    "parse_event",
    "parse_privacy_request",
    "unflatten_attributes",
]


def parse_event(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    config: IdentityConfig,
    channel_default: str,
    max_bytes: int,
    now_ms: int | None = None,
) -> Event:
    """The event a record value holds, or ``Rejected`` saying why it goes to dead letter.

    ``channel_default`` is the topic's channel suffix; ``now_ms`` (default: the clock)
    bounds how far in the future a timestamp may lie.
    """
    doc = decode_value(raw, max_bytes)
    validate_envelope(doc)
    timestamp_ms = parse_timestamp(doc["timestamp"], clock_ms() if now_ms is None else now_ms)
    identities, primary, dropped = resolve_identities(doc["identities"], config)
    return Event(
        event_id=doc["event_id"],
        timestamp_ms=timestamp_ms,
        kind=doc["kind"],
        channel=doc.get("channel") or channel_default,
        identities=identities,
        primary=primary,
        attributes=doc.get("attributes") or {},
        event=doc.get("event") or {},
        source=Source(topic, partition, offset),
        dropped=dropped,
    )
