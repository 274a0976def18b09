"""Reading an output topic back to its end with a fresh, group-less consumer.

Used by ``cdp profile tail``, the demo and the tests: what a downstream user sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from pipeline.kafka import client_kwargs
from pipeline.publish.encode import CONTENT_TYPE, decode
from pipeline.settings import Settings
from pipeline.topics import admin_client, partitions_of


@dataclass(frozen=True)
class OutputRecord:
    partition: int
    offset: int
    timestamp_ms: int  # the producer's create time: when the pipeline published it
    key: str | None
    value: Any  # decoded document, or None for a tombstone
    raw: bytes | None
    headers: dict[str, bytes]


async def read_to_end(
    settings: Settings, topic: str, *, follow: bool = False, decoded: bool = True
) -> AsyncIterator[OutputRecord]:
    """Every record of ``topic`` from the start to the end offsets seen at call time
    (or on and on with ``follow``). ``decoded=False`` leaves values as bytes (dead letters
    are the producers' bytes, not ours)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        partitions = await partitions_of(admin, [topic])
    finally:
        await admin.close()
    # Made only now: one made before a broker that is not there leaves "Unclosed
    # AIOKafkaConsumer" on stderr after the CLI's own error.
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while follow or remaining:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for m in messages:
                    headers = dict(m.headers or ())
                    yield OutputRecord(
                        m.partition,
                        m.offset,
                        m.timestamp,
                        m.key.decode() if m.key is not None else None,
                        decode(m.value, headers.get(CONTENT_TYPE))
                        if m.value is not None and decoded
                        else None,
                        m.value,
                        headers,
                    )
            # Positions, not last offsets: compaction and markers leave offset gaps.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def latest_by_key(settings: Settings, topic: str) -> dict[str, Any]:
    """The last value of every key: the current view a compacted topic stands for."""
    view: dict[str, Any] = {}
    async for record in read_to_end(settings, topic):
        if record.key is not None:
            view[record.key] = record.value
    return view
