"""Profile-update notes on the internal updates topic, as workers before direct
publishing wrote them (one record per partition), read in both the grouped format and
the one-note format of the versions before it."""

from __future__ import annotations

import random

import msgpack
import pytest

from pipeline.notes import GROUPED, UpdateNote, read_notes
from pipeline.partition import cached_partitioner
from pipeline.records import Outputs
from tests.model.notes import MAX_NOTES_PER_RECORD, note_records

PARTITIONS = list(range(4))


def partition_of(key: bytes) -> int:
    return cached_partitioner(key, PARTITIONS, PARTITIONS)


def profile_ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"p_{rng.getrandbits(40):010x}" for _ in range(n)]


def test_a_record_of_the_previous_version_is_one_note_keyed_by_its_profile() -> None:
    old = msgpack.packb([1_700_000_000_123, 1_700_000_000_456])  # what UpdateNote.pack wrote
    assert read_notes(b"p_00000000ff", old) == [
        ("p_00000000ff", UpdateNote(1_700_000_000_123, 1_700_000_000_456))
    ]


def test_each_partition_gets_one_record_with_exactly_its_notes() -> None:
    out = Outputs()
    for i, profile_id in enumerate(profile_ids(300)):
        out.note(profile_id, UpdateNote(1_000 + i, 2_000 + i))
    records = list(note_records(out.updates, partition_of))
    assert len(records) == len(PARTITIONS)
    seen: dict[str, UpdateNote] = {}
    for key, value in records:
        assert msgpack.unpackb(value)[0] == GROUPED
        notes = read_notes(key, value)
        assert key.decode() == notes[0][0]  # keyed by a profile id of the partition...
        assert {partition_of(pid.encode()) for pid, _ in notes} == {partition_of(key)}  # ...its
        seen.update(notes)
    assert seen == out.updates  # every note once, times kept


def test_a_group_above_the_limit_splits_into_several_records_of_its_partition() -> None:
    ids = [pid for pid in profile_ids(400) if partition_of(pid.encode()) == 0][:25]
    notes = {pid: UpdateNote(1, 2) for pid in ids}
    records = list(note_records(notes, partition_of, limit=10))
    assert [len(read_notes(k, v)) for k, v in records] == [10, 10, 5]
    assert {partition_of(k) for k, _ in records} == {0}
    assert [pid for k, v in records for pid, _ in read_notes(k, v)] == ids  # in order


def test_a_full_record_stays_far_below_a_brokers_default_record_limit() -> None:
    notes = {pid: UpdateNote(1_700_000_000_000, 1_700_000_000_000) for pid in profile_ids(5000)}
    records = list(note_records(notes, lambda key: 0))
    assert len(records) == -(-5000 // MAX_NOTES_PER_RECORD)
    assert all(len(value) < 64 * 1024 for _, value in records)  # Kafka's default: 1 MiB


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"p_1", b"\xc1"),  # not msgpack
        (b"p_1", None),
        (None, msgpack.packb([1, 2])),  # a one-note record needs its profile id
        (b"p_1", msgpack.packb({"a": 1, "b": 2})),
        (b"p_1", msgpack.packb("ab")),
        (b"p_1", msgpack.packb([3, "p_1", 1, 2])),  # an unknown format
        (b"p_1", msgpack.packb([GROUPED, "p_1", 1])),  # a note cut short
        (b"p_1", msgpack.packb([GROUPED, 7, 1, 2])),  # a profile id that is no string
        (b"p_1", msgpack.packb([GROUPED, "p_1", "x", 2])),
    ],
)
def test_anything_else_is_refused(key: bytes | None, value: bytes | None) -> None:
    with pytest.raises((ValueError, TypeError, msgpack.UnpackException)):
        read_notes(key, value)
