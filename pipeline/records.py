"""Kafka records as the plain functions see them, and what they send back out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.notes import UpdateNote

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
    headers: tuple[tuple[str, bytes], ...] = ()  # the producer's own (trace ids and the like)


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes]]:
        """The producer's own headers, then the reason and the origin, as CONTRACT 2 asks.
        A producer's header named as one of ours is left out: a reader of a dead letter
        must not find two ``cdp-reason``."""
        ours = [
            ("cdp-reason", self.reason.encode()),
            ("cdp-detail", self.detail.encode()),
            ("cdp-source-topic", self.record.topic.encode()),
            ("cdp-source-partition", str(self.record.partition).encode()),
            ("cdp-source-offset", str(self.record.offset).encode()),
        ]
        names = {name for name, _ in ours}
        return [h for h in self.record.headers if h[0] not in names] + ours


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
