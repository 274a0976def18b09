"""The yardsticks of ``cdp bench e2e``: bare aiokafka consume-and-forward loops over the
same records the pipeline gets, one that never commits and one that commits each fetch."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cdp_tools.bench.topics import drop_topics
from cdp_tools.produce import ensure_plain_topics
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.settings import Settings


async def _forward(settings: Settings, source: str, sink: str, n: int, commit: bool) -> float:
    producer = AIOKafkaProducer(**client_kwargs(settings))
    consumer = AIOKafkaConsumer(
        source,
        **client_kwargs(settings),
        group_id=f"bench-pt-{uuid.uuid4().hex[:6]}" if commit else None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    try:
        started, moved = time.perf_counter(), 0
        while moved < n:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                pending = [await producer.send(sink, m.value, key=m.key) for m in messages]
                await asyncio.gather(*pending)
                moved += len(messages)
            if commit:
                await consumer.commit()
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def passthroughs(settings: Settings, events: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s of the forwarding loop without commits and with a commit after each fetch."""
    tag = uuid.uuid4().hex[:6]
    source, sink = f"bench-raw-{tag}", f"bench-sink-{tag}"
    await ensure_plain_topics(settings, [source, sink])
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(source, encode(e, "json"), key=e["event_id"].encode())
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    n = len(events)
    try:
        plain = await _forward(settings, source, sink, n, commit=False)
        committing = await _forward(settings, source, sink, n, commit=True)
    finally:
        await drop_topics(settings, (source, sink))
    return plain, committing
