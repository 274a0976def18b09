"""Event-to-profile latency at a steady input rate, seen from outside the worker: from
the time an event is produced to the timestamp of the first ``cdp.profiles`` record
that lists its identity. Every event is a new visitor (a new profile).

Each event's time is split into hops by the times the records carry: the channel
record's timestamp (the broker's append time: the benchmark creates its channel topics
with ``message.timestamp.type=LogAppendTime``), the profile document's ``updated_at``
(when the stitch script that made it ran, by the Redis clock, on the same machine) and
the profile record's timestamp (when the worker handed it to its producer). The same
split applies to a worker of any version: before direct publishing, the publish hop
also held the update note's produce, delivery and fetch."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from cdp_tools.quiesce import wait_caught_up
from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.publish.reader import read_to_end
from pipeline.settings import Settings, Topics

# The benchmark's channel topics: their records carry the broker's append time.
BROKER_TIME = {"message.timestamp.type": "LogAppendTime"}


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


@dataclass(frozen=True)
class Hops:
    """Where one event's time went (seconds)."""

    append: float  # produce call -> the broker appended it (the producer's hop)
    to_script: float  # appended -> its stitch script ran (fetch, hand-over, ingest, Redis)
    publish: float  # stitch script -> profile record handed over (read, assemble, encode)

    @property
    def total(self) -> float:
        return self.append + self.to_script + self.publish


async def _appended(settings: Settings, topic: str) -> dict[str, int]:
    """Timestamp (ms) of the first record of each key."""
    first: dict[str, int] = {}
    async for record in read_to_end(settings, topic, decoded=False):
        if record.key is not None:
            first.setdefault(record.key, record.timestamp_ms)
    return first


async def first_published(settings: Settings, wanted: set[str]) -> dict[str, tuple[int, int]]:
    """Of the first profile record naming each wanted identity: its document's
    ``updated_at`` and the record's timestamp (ms)."""
    seen: dict[str, tuple[int, int]] = {}
    async for record in read_to_end(settings, Topics(settings.topic_prefix).profiles):
        for ident in record.value["identities"] if record.value else ():
            if ident["id"] in wanted and ident["id"] not in seen:
                updated = datetime.fromisoformat(record.value["updated_at"])
                seen[ident["id"]] = round(updated.timestamp() * 1000), record.timestamp_ms
    return seen


def split(
    sent: dict[str, float], appended: dict[str, int], published: dict[str, tuple[int, int]]
) -> list[Hops]:
    """Each sent visitor's hops, from its channel record's append time and its first
    profile record (its document's ``updated_at`` and the record's timestamp)."""
    hops = []
    for visitor, sent_s in sent.items():
        if visitor not in published or visitor not in appended:
            continue
        script_ms, published_ms = published[visitor]
        appended_ms = appended[visitor]
        hops.append(
            Hops(
                appended_ms / 1000 - sent_s,
                (script_ms - appended_ms) / 1000,
                (published_ms - script_ms) / 1000,
            )
        )
    return hops


def describe(hops: list[Hops]) -> str:
    """Median and p99 of each hop, and each hop's mean over the slowest 1% of events."""
    if len(hops) < 2:
        return "too few samples"
    slowest = sorted(hops, key=lambda h: h.total)[-max(1, len(hops) // 100) :]
    parts = []
    for name in ("append", "to_script", "publish"):
        values = [getattr(h, name) * 1000 for h in hops]
        q = statistics.quantiles(values, n=100)
        tail = statistics.mean(getattr(h, name) * 1000 for h in slowest)
        parts.append(f"{name} {q[49]:.1f}/{q[98]:.1f}/{tail:.1f}")
    return "hops p50/p99/mean of the slowest 1%, ms: " + ", ".join(parts)


async def produce_steady(
    settings: Settings, rate: float, seconds: float, warmup: float, tag: str
) -> dict[str, float]:
    """New visitors at ``rate``/s for ``warmup`` + ``seconds``; the send times of those
    after the warm-up."""
    return await _produce_paced(
        settings, rate, int(rate * (warmup + seconds)), int(rate * warmup), tag
    )


async def latencies(settings: Settings, sent: dict[str, float]) -> list[Hops]:
    """The hops of each sent visitor, once the pipeline has caught up (a profile never
    published is missing from the list)."""
    await wait_caught_up(settings, timeout_s=600, settle=1)
    topics = Topics(settings.topic_prefix)
    return split(
        sent,
        await _appended(settings, topics.events("web")),
        await first_published(settings, set(sent)),
    )
