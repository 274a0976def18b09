"""Profile-update notes and their records on the internal updates topic.

A note says a profile must be republished; its owner is the partition of the updates
topic that its profile id hashes to, so one worker publishes each profile. A batch's
notes travel as one record per partition, not one per profile: each record is a Faust
message on the publishing side, and its per-message costs were paid per profile.

Record format (msgpack), as written since issue 12:
    key:   the first profile id of the record (it hashes to the record's partition)
    value: [2, profile_id, event_ms, ingest_ms, profile_id, event_ms, ingest_ms, ...]
The leading 2 names the format. Versions before issue 12 wrote one record per note,
keyed by its profile id, with the value ``[event_ms, ingest_ms]``: still read, so the
records on the topic when a worker is upgraded are published. Such a version cannot read
a record of several notes (it logs it as malformed and skips it): see README, Upgrading.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

GROUPED = 2  # the first item of a record of several notes; a one-note record has two
# A record carries at most this many notes (31 bytes each: some 31 KB, far below any
# broker's record limit); a batch that touches more profiles of one partition (a large
# CDP_BATCH_SIZE, splits) sends several records to it; a 500-event batch needs one.
MAX_NOTES_PER_RECORD = 1000


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


Note = tuple[str, UpdateNote]  # profile id, note


def note_records(
    notes: Mapping[str, UpdateNote],
    partition_of: Callable[[bytes], int],
    limit: int = MAX_NOTES_PER_RECORD,
) -> Iterator[tuple[bytes, bytes]]:
    """Key and value of the records carrying ``notes``: one per partition that
    ``partition_of`` (the producer's partitioner) sends a profile id to, or more where
    a partition has more than ``limit``."""
    groups: dict[int, list[Any]] = {}
    for profile_id, note in notes.items():
        groups.setdefault(partition_of(profile_id.encode()), []).append(
            (profile_id, note.event_ms, note.ingest_ms)
        )
    for group in groups.values():
        for start in range(0, len(group), limit):
            part = group[start : start + limit]
            flat: list[Any] = [GROUPED]
            for item in part:
                flat += item
            yield part[0][0].encode(), msgpack.packb(flat)


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
