"""Kafka records as the plain functions see them, and what they send back out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgpack

# Record sizes in bytes. The brokers this project configures (`cdp stack`,
# docker-compose.yml, the Strimzi example) take records up to BROKER_MAX_RECORD_BYTES
# (message.max.bytes), so that an event above CDP_MAX_EVENT_BYTES (1 MiB) reaches the
# worker and becomes an `oversized` dead letter: Kafka's default (about 1 MiB) refuses it
# at produce time, before the worker can see it.
BROKER_MAX_RECORD_BYTES = 8 * 1024 * 1024
# The worker producer's max_request_size and the max.message.bytes of the topics it
# writes the producers' bytes to (dead letters) or their attributes to (profiles): a
# whole record of the broker's ceiling plus what a dead letter adds, with room to spare.
OUTPUT_MAX_RECORD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record, detached from Faust so logic is testable without it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes]]:
        """The reason and the origin, as CONTRACT 2 asks, in Kafka headers."""
        return [
            ("cdp-reason", self.reason.encode()),
            ("cdp-detail", self.detail.encode()),
            ("cdp-source-topic", self.record.topic.encode()),
            ("cdp-source-partition", str(self.record.partition).encode()),
            ("cdp-source-offset", str(self.record.offset).encode()),
        ]


@dataclass
class UpdateNote:
    """Why a profile must be republished: carried to its owner on the updates topic."""

    event_ms: int  # earliest event time behind the update (latency from event time)
    ingest_ms: int  # when the worker consumed it (latency from ingestion)

    @classmethod
    def now(cls) -> UpdateNote:
        now_ms = int(time.time() * 1000)
        return cls(now_ms, now_ms)

    def fold(self, other: UpdateNote) -> None:
        self.event_ms = min(self.event_ms, other.event_ms)
        self.ingest_ms = min(self.ingest_ms, other.ingest_ms)

    def pack(self) -> bytes:
        return msgpack.packb([self.event_ms, self.ingest_ms])

    @classmethod
    def unpack(cls, raw: bytes) -> UpdateNote:
        event_ms, ingest_ms = msgpack.unpackb(raw)
        return cls(int(event_ms), int(ingest_ms))


@dataclass
class Outputs:
    """Everything one processed batch sends, sent before its offsets are committed."""

    deadletters: list[DeadLetter] = field(default_factory=list)
    updates: dict[str, UpdateNote] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def note(self, profile_id: str, note: UpdateNote) -> None:
        if profile_id in self.updates:
            self.updates[profile_id].fold(note)
        else:
            self.updates[profile_id] = UpdateNote(note.event_ms, note.ingest_ms)
