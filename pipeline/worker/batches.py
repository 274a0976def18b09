"""Batches that wait only under load, the way Kafka's producer batches.

An event that finds nothing buffered behind it is handled at once (a batch of one
when the pipeline is idle); while the agent is busy with a batch, the events that
arrive meanwhile are buffered and become the next batch, up to a size and an age.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from faust.types import EventT, StreamT


async def batches(stream: StreamT, max_: int, window_s: float) -> AsyncIterator[list[EventT]]:
    """Unacknowledged events of ``stream`` in batches: a batch closes when no further
    event is buffered, at ``max_`` events, or once it has been open ``window_s``."""
    queue = stream.channel.queue  # type: ignore[attr-defined]  # a Topic's delivery queue
    batch: list[EventT] = []
    opened = 0.0
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        if not batch:
            opened = time.monotonic()
        batch.append(event)
        if len(batch) >= max_ or queue.empty() or time.monotonic() - opened >= window_s:
            yield batch
            batch = []
