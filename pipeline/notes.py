"""Profile-update notes: which profiles a batch changed and when its events happened.

A batch's notes are coalesced (one per profile id) and its agent publishes those
profiles itself (publish/verified.py). Workers before that wrote the notes to the
internal updates topic for the publish agent, one record per partition; a worker still
reads and publishes such records, written by the older workers of a rolling upgrade
(README, Upgrading).

Record format (msgpack), as written from issue 12 until direct publishing:
    key:   the first profile id of the record (it hashes to the record's partition)
    value: [2, profile_id, event_ms, ingest_ms, profile_id, event_ms, ingest_ms, ...]
The leading 2 names the format. Versions before issue 12 wrote one record per note,
keyed by its profile id, with the value ``[event_ms, ingest_ms]``: still read, so the
records on the topic when a worker is upgraded are published. Such a version cannot read
a record of several notes (it logs it as malformed and skips it): see README, Upgrading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgpack

GROUPED = 2  # the first item of a record of several notes; a one-note record has two


@dataclass
class UpdateNote:
    """Why a profile must be republished, and the times its publication is measured from."""

    event_ms: int  # earliest event time behind the update (latency from event time)
    ingest_ms: int  # when the worker consumed it (latency from ingestion)

    @classmethod
    def now(cls) -> UpdateNote:
        now_ms = int(time.time() * 1000)
        return cls(now_ms, now_ms)

    def fold(self, other: UpdateNote) -> None:
        self.event_ms = min(self.event_ms, other.event_ms)
        self.ingest_ms = min(self.ingest_ms, other.ingest_ms)


Note = tuple[str, UpdateNote]  # profile id, note


def read_notes(key: bytes | None, value: bytes | None) -> list[Note]:
    """The notes of a record of either format; raises if it is neither."""
    items = msgpack.unpackb(value)  # None raises TypeError
    if not isinstance(items, list):
        raise ValueError("not a msgpack array")
    if len(items) == 2:  # one note, keyed by its profile id (before issue 12)
        if key is None:
            raise ValueError("a one-note record without its profile id")
        return [(key.decode(), UpdateNote(int(items[0]), int(items[1])))]
    if items[0] != GROUPED or len(items) % 3 != 1:
        raise ValueError("neither a note nor a group of notes")
    notes = []
    for i in range(1, len(items), 3):
        profile_id, event_ms, ingest_ms = items[i : i + 3]
        if not isinstance(profile_id, str):
            raise ValueError("a profile id that is not a string")
        notes.append((profile_id, UpdateNote(int(event_ms), int(ingest_ms))))
    return notes
