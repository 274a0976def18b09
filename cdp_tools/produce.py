"""``cdp produce``: write events to channel topics (creating missing ones)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.kafka import client_kwargs
from pipeline.publish.encode import encode
from pipeline.records import BROKER_MAX_RECORD_BYTES
from pipeline.settings import Settings, Topics
from pipeline.topics import admin_client


async def ensure_channel_topics(
    settings: Settings, channels: Iterable[str], configs: dict[str, str] | None = None
) -> None:
    """Channel topics are the producers' (CONTRACT 2); this creates them for convenience."""
    topics = Topics(settings.topic_prefix)
    await ensure_plain_topics(settings, [topics.events(c) for c in channels], configs)


async def ensure_plain_topics(
    settings: Settings, names: Iterable[str], configs: dict[str, str] | None = None
) -> None:
    """Create the missing ones with the default (delete) policy and ``configs``, and wait
    for leaders."""
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name, settings.topic_partitions, settings.topic_replication, topic_configs=configs
            )
            for name in sorted(set(names))
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                await admin.create_topics(missing)
            await _wait_for_leaders(admin, [t.name for t in missing])
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """New partitions refuse writes until a leader is elected; wait instead of retrying."""
    for _ in range(100):
        described = await admin.describe_topics(names)
        if all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)


async def produce(
    settings: Settings,
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    encoding: str = "json",
    max_in_flight: int = 5000,
) -> int:
    """Send (channel, envelope) pairs; returns how many the broker acknowledged."""
    batch = list(events)
    await ensure_channel_topics(settings, (channel for channel, _ in batch))
    topics = Topics(settings.topic_prefix)
    # Up to what the broker takes: an oversized event must reach the worker to be
    # dead-lettered, not stop here (aiokafka's default is 1 MiB).
    producer = AIOKafkaProducer(
        **client_kwargs(settings),
        linger_ms=5,
        acks="all",
        max_request_size=BROKER_MAX_RECORD_BYTES,
    )
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for channel, event in batch:
            value = encode(event, encoding)
            pending.append(
                await producer.send(
                    topics.events(channel), value, key=str(event.get("event_id", "")).encode()
                )
            )
            if len(pending) >= max_in_flight:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending.clear()
        await asyncio.gather(*pending)
        sent += len(pending)
    finally:
        await producer.stop()
    return sent
