"""Batches that coalesce only a backlog, the way Kafka's producer batches.

An event that finds nothing buffered behind it is handled at once (a batch of one when
the pipeline is idle); while the agent is busy with a batch, the events that arrive
meanwhile are buffered and become the next batch. A batch takes what was buffered when
it opened and never waits for more: Faust hands events over one at a time and lets the
other tasks run in between, so under a steady input the buffer refills before it is
empty, and a batch that waited for an empty buffer stayed open for its whole window
(up to 100 ms of the event-to-profile latency at 1,000 events/s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.types import EventT, StreamT


async def batches(stream: StreamT, max_: int) -> AsyncIterator[list[EventT]]:
    """Unacknowledged events of ``stream`` in batches: an event and those buffered
    behind it when it arrived, at most ``max_``."""
    queue = stream.channel.queue  # type: ignore[attr-defined]  # a Topic's delivery queue
    batch: list[EventT] = []
    size = 0
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        if not batch:
            size = min(max_, 1 + queue.qsize())
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
