"""Two batches of an agent in hand: the next one staged while the previous one's work runs.

The stitch agent used to ingest a batch, await its Redis call, then take the next
batch: the worker's one thread sat idle for each round trip, and Redis for each ingest.
Here a batch's work runs in a task of its own, so the agent takes and ingests the next
batch meanwhile. That batch's work starts only once the previous batch's work went
through (its script applied, retries and the bisection of a script error included, its
outputs queued), so Redis applies the batches in the order they were consumed, as
before: no batch's effects ever overtake an earlier one's, and what overlaps Redis's
work is ingest alone, which has no effects (metrics aside). Acknowledgements stay with
``InOrderAcks``: in order, each after its outputs are delivered.

On shutdown the batch whose work runs is finished within ``InOrderAcks``'s grace time;
a staged batch waiting for it is dropped unacknowledged and is consumed again by
whoever gets the partitions (at-least-once, as any unacknowledged batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from faust.types import EventT

from pipeline.worker.acks import InOrderAcks, Work


class Overlap:
    def __init__(self, acks: InOrderAcks) -> None:
        self.acks = acks
        self.running: asyncio.Future[None] | None = None

    async def submit(self, batch: Sequence[EventT], work: Callable[[], Work]) -> None:
        """Wait for the previous batch's work, then start this one's and return at once:
        the caller stages the next batch meanwhile. ``InOrderAcks`` retries a failed
        batch, work or delivery, so only a cancellation of the previous batch is raised
        here."""
        if self.running is not None:
            await asyncio.shield(self.running)  # a cancelled agent leaves it to finish()
        self.running = asyncio.ensure_future(self.acks.run(batch, work))

    async def finish(self) -> None:
        """Let the running batch finish within the grace time, then wait for the
        acknowledgements in flight."""
        running, self.running = self.running, None
        if running is not None:
            # Cancelled, InOrderAcks finishes the work in hand within the grace time
            # and leaves a batch still waiting to be retried unacknowledged.
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await self.acks.finish()
