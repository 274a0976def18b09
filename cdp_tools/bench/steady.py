"""Event-to-profile latency at a steady input rate, seen from outside the worker: from
the time an event is produced to the timestamp of the first ``cdp.profiles`` record
that lists its identity. Every event is a new visitor (a new profile)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from cdp_tools.quiesce import wait_caught_up
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics


def new_visitor(visitor: str, now_ms: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{visitor}",
        "timestamp": now_ms,
        "kind": "experience",
        "identities": [{"namespace": "ecid", "id": visitor}],
        "event": {"type": "page_view"},
    }


async def _produce_paced(
    settings: Settings, rate: float, total: int, skip: int, tag: str
) -> dict[str, float]:
    """Send ``total`` events at ``rate``/s; the send times of all but the first ``skip``."""
    topic = Topics(settings.topic_prefix).events("web")
    producer = AIOKafkaProducer(**client_kwargs(settings))
    await producer.start()
    sent: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        for i in range(total):
            if (delay := t0 + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            visitor, now = f"v-{tag}-{i}", time.time()
            if i >= skip:
                sent[visitor] = now
            event = new_visitor(visitor, int(now * 1000))
            await producer.send(topic, encode(event, "json"), key=visitor.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def first_published(settings: Settings, wanted: set[str]) -> dict[str, float]:
    """Broker timestamp (seconds) of the first profile record naming each wanted identity."""
    seen: dict[str, float] = {}
    async for record in read_to_end(settings, Topics(settings.topic_prefix).profiles):
        for ident in record.value["identities"] if record.value else ():
            if ident["id"] in wanted and ident["id"] not in seen:
                seen[ident["id"]] = record.timestamp_ms / 1000
    return seen


async def produce_steady(
    settings: Settings, rate: float, seconds: float, warmup: float, tag: str
) -> dict[str, float]:
    """New visitors at ``rate``/s for ``warmup`` + ``seconds``; the send times of those
    after the warm-up."""
    return await _produce_paced(
        settings, rate, int(rate * (warmup + seconds)), int(rate * warmup), tag
    )


async def latencies(settings: Settings, sent: dict[str, float]) -> list[float]:
    """Seconds from produce to profile for each sent visitor, once the pipeline has
    caught up (a profile never published is missing from the list)."""
    await wait_caught_up(settings, timeout_s=600, settle=1)
    seen = await first_published(settings, set(sent))
    return [seen[v] - sent[v] for v in seen]
