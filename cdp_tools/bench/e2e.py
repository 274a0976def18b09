"""``cdp bench e2e``: events/s and event-to-profile latency through a real worker, next
to a raw aiokafka consume-and-forward passthrough measured in the same run.

Needs Kafka and Redis (``cdp stack up``); starts its own worker on a fresh topic prefix.
Wipes nothing but its own topics' Redis keys: run it against a scratch Redis DB.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cdp_tools.produce import ensure_channel_topics, ensure_plain_topics, produce
from cdp_tools.quiesce import wait_caught_up
from cdp_tools.workerproc import WorkerProcess, free_port
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics


def _events(n: int, people: int, start_ms: int) -> list[tuple[str, dict[str, Any]]]:
    channels = ("web", "mobile", "crm", "pos")
    return [
        (
            channels[i % 4],
            {
                "event_id": f"bench-{i}",
                "timestamp": start_ms + i,
                "kind": "experience",
                "identities": [
                    {"namespace": "crm_id", "id": f"B{i % people}"},
                    {"namespace": "ecid", "id": f"bc-{i % (people * 2)}"},
                ],
                "attributes": {"n": i},
                "event": {"type": "bench"},
            },
        )
        for i in range(n)
    ]


async def passthrough(settings: Settings, n: int) -> float:
    """Events/s of a bare consume-and-forward loop over the same kind of records."""
    source, sink = f"bench-raw-{uuid.uuid4().hex[:6]}", f"bench-sink-{uuid.uuid4().hex[:6]}"
    events = _events(n, max(1, n // 10), int(time.time() * 1000))
    await ensure_plain_topics(settings, [source, sink])
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(source, encode(e, "json")) for _, e in events]
        await asyncio.gather(*futures)
        consumer = AIOKafkaConsumer(
            source,
            **client_kwargs(settings),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            started, moved = time.perf_counter(), 0
            while moved < n:
                for messages in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                    pending = [await producer.send(sink, m.value, key=m.key) for m in messages]
                    await asyncio.gather(*pending)
                    moved += len(messages)
            return n / (time.perf_counter() - started)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()


async def latencies(settings: Settings, count: int, rate: float) -> list[float]:
    """Event-to-profile seconds for ``count`` single-event profiles sent at ``rate``/s."""
    topics = Topics(settings.topic_prefix)
    await ensure_channel_topics(settings, ["web"])
    producer = AIOKafkaProducer(**client_kwargs(settings))
    await producer.start()
    sent: dict[str, float] = {}
    try:
        for i in range(count):
            crm = f"LAT{i}"
            sent[crm] = time.time()
            event = {
                "event_id": f"lat-{uuid.uuid4()}",
                "timestamp": int(sent[crm] * 1000),
                "kind": "record",
                "identities": [{"namespace": "crm_id", "id": crm}],
            }
            await producer.send(topics.events("web"), encode(event, "json"))
            await asyncio.sleep(1 / rate)
        await producer.flush()
    finally:
        await producer.stop()
    await wait_caught_up(settings, 120)
    seen: dict[str, float] = {}
    async for record in read_to_end(settings, topics.profiles):
        if record.value:
            for ident in record.value["identities"]:
                if ident["id"] in sent and ident["id"] not in seen:
                    seen[ident["id"]] = record.timestamp_ms / 1000
    return [seen[k] - sent[k] for k in seen]


def main(settings: Settings, n: int) -> None:
    tag = uuid.uuid4().hex[:6]
    s = replace(settings, topic_prefix=f"bench{tag}.", app_id=f"cdp-bench-{tag}")
    env = {"CDP_TOPIC_PREFIX": s.topic_prefix, "CDP_APP_ID": s.app_id}
    print(f"baseline: raw aiokafka consume-and-forward of {n} records...")
    baseline = asyncio.run(passthrough(s, n))
    print(f"pipeline: {n} events pre-produced, then one worker drains them...")
    asyncio.run(produce(s, _events(n, max(1, n // 10), int(time.time() * 1000) - 3600_000)))
    worker = WorkerProcess(free_port(), Path(s.state_dir) / "logs" / f"bench-{tag}.log", env)
    worker.start()
    try:
        worker.wait_ready()
        started = time.perf_counter()
        asyncio.run(wait_caught_up(s, timeout_s=600, settle=1))
        throughput = n / (time.perf_counter() - started)
        rate = min(200.0, throughput / 4)
        lat = sorted(asyncio.run(latencies(s, 400, rate)))
    finally:
        worker.stop()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    print(f"\nbaseline passthrough : {baseline:10.0f} events/s")
    print(
        f"pipeline end-to-end  : {throughput:10.0f} events/s  "
        f"(ratio {throughput / baseline:.3f} of the passthrough)"
    )
    print(
        f"event-to-profile     : p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms "
        f"({len(lat)} profiles at {rate:.0f} events/s)"
    )
