"""Update-note records as workers before direct publishing wrote them (one record per
partition of the internal updates topic), for the tests of what a worker still reads:
the records an older worker of a rolling upgrade leaves there."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgpack

from pipeline.notes import GROUPED, UpdateNote

# Those workers' limit: a record carried at most this many notes (31 bytes each).
MAX_NOTES_PER_RECORD = 1000


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
