"""Waiting until the pipeline has caught up with its input (demo, tests, bench)."""

from __future__ import annotations

import asyncio
import re
import time

from aiokafka import AIOKafkaConsumer

from pipeline.kafka import client_kwargs
from pipeline.settings import Settings, Topics
from pipeline.topics import admin_client, partitions_of


async def lag(settings: Settings) -> int:
    """Messages of the channel and update topics the worker group has not committed."""
    topics = Topics(settings.topic_prefix)
    pattern = re.compile(topics.events_pattern)
    admin = admin_client(settings)
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        names = [
            t for t in await admin.list_topics() if pattern.match(t) or t == topics.profile_updates
        ]
        partitions = await partitions_of(admin, names)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        committed = await admin.list_consumer_group_offsets(settings.app_id)
        return sum(
            max(0, end - (committed[tp].offset if tp in committed else 0))
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def wait_caught_up(settings: Settings, timeout_s: float = 120.0, settle: int = 2) -> float:
    """Seconds until the lag was zero ``settle`` polls in a row; TimeoutError past the limit."""
    started = time.monotonic()
    zero_polls = 0
    while zero_polls < settle:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"pipeline still behind after {timeout_s:.0f}s")
        zero_polls = zero_polls + 1 if await lag(settings) == 0 else 0
        await asyncio.sleep(0.5)
    return time.monotonic() - started
